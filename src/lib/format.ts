import type { Currency } from './money.js';

/**
 * Amounts and times as a customer reads them in emails, invoices and the dashboard.
 * The output is built from parts by hand, not taken whole from Intl, so it does not move
 * with the ICU data Node ships: en-GB writes "Sept" since ICU 72, and which locale knows
 * "IST" or "EST" differs by zone.
 */

const SYMBOLS: Record<Currency, string> = { INR: '₹', USD: '$' };

/** "1234567" -> "12,34,567" (Indian: the last three, then pairs) or "1,234,567". */
function group(digits: string, currency: Currency): string {
  if (digits.length <= 3) return digits;
  const last3 = digits.slice(-3);
  const head = digits.slice(0, -3);
  const size = currency === 'INR' ? 2 : 3;
  const groups: string[] = [];
  for (let end = head.length; end > 0; end -= size) groups.unshift(head.slice(Math.max(0, end - size), end));
  return `${groups.join(',')},${last3}`;
}

/** 12345678 INR -> "₹1,23,456.78"; 123456 USD -> "$1,234.56"; -50000 INR -> "-₹500.00". */
export function formatAmount(minor: number, currency: Currency): string {
  if (!Number.isSafeInteger(minor)) {
    throw new RangeError(`formatAmount needs a whole number of minor units, got ${minor}`);
  }
  const abs = Math.abs(minor);
  const major = group(String(Math.floor(abs / 100)), currency);
  const cents = String(abs % 100).padStart(2, '0');
  return `${minor < 0 ? '-' : ''}${SYMBOLS[currency]}${major}.${cents}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// Formatters are costly to build; a process sees few time zones, and an invalid one throws
// before it is stored.
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(key: string, make: () => Intl.DateTimeFormat): Intl.DateTimeFormat {
  let f = formatters.get(key);
  if (!f) {
    f = make();
    formatters.set(key, f);
  }
  return f;
}

interface WallClock {
  day: number;
  month: number;
  year: number;
  hour: string;
  minute: string;
}

function wallClock(at: Date, timeZone: string): WallClock {
  const f = formatter(`clock ${timeZone}`, () =>
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }),
  );
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(at)) parts[p.type] = p.value;
  return {
    day: Number(parts.day),
    month: Number(parts.month),
    year: Number(parts.year),
    hour: parts.hour!.padStart(2, '0'),
    minute: parts.minute!.padStart(2, '0'),
  };
}

// en-US names American zones (EST), en-IN names Asia/Kolkata (IST), en-GB names London in
// summer (BST); each gives "GMT+5:30"-style offsets for zones it has no name for.
const ZONE_LOCALES = ['en-US', 'en-IN', 'en-GB'];
const OFFSET_NAME = /^GMT[+-]/;
// For ICU builds without the en-IN names.
const KNOWN_OFFSETS: Record<string, string> = { 'GMT+5:30': 'IST' };

function zoneName(at: Date, timeZone: string): string {
  let offsetForm = '';
  for (const locale of ZONE_LOCALES) {
    const f = formatter(`zone ${locale} ${timeZone}`, () => new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: 'short' }));
    const name = f.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? '';
    if (name && !OFFSET_NAME.test(name)) return name;
    offsetForm ||= name;
  }
  return KNOWN_OFFSETS[offsetForm] ?? offsetForm;
}

/** "2 Dec 2026" as the date reads in `timeZone`. */
export function formatDate(at: Date, timeZone: string): string {
  const c = wallClock(at, timeZone);
  return `${c.day} ${MONTHS[c.month - 1]!} ${c.year}`;
}

/** "2 Dec 2026, 10:30 IST": 24-hour clock, with the zone's short name. */
export function formatDateTime(at: Date, timeZone: string): string {
  const c = wallClock(at, timeZone);
  return `${c.day} ${MONTHS[c.month - 1]!} ${c.year}, ${c.hour}:${c.minute} ${zoneName(at, timeZone)}`;
}

/** The time zone a customer in `country` (ISO 3166 alpha-2) is shown times in. */
export function timeZoneForCountry(country: string): string {
  if (country === 'IN') return 'Asia/Kolkata';
  if (country === 'US') return 'America/New_York';
  return 'UTC';
}
