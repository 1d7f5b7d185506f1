import type { Currency } from './money.js';

/**
 * An amount in words, as invoices print it: "Indian Rupees Twelve Crore Thirty-Four Lakh ...
 * and Fifty Paise Only". INR counts in the Indian way (thousand, lakh, crore; crores repeat,
 * so 10^9 rupees is "One Hundred Crore"); USD in the international way (thousand, million,
 * billion, trillion).
 */

/** The largest amount spelled out, in minor units. */
export const MAX_AMOUNT_IN_WORDS = 1_000_000_000_000_000;

const ONES = [
  'Zero', 'One', 'Two', 'Three', 'Four', 'Five', 'Six', 'Seven', 'Eight', 'Nine', 'Ten',
  'Eleven', 'Twelve', 'Thirteen', 'Fourteen', 'Fifteen', 'Sixteen', 'Seventeen', 'Eighteen', 'Nineteen',
];
const TENS = ['', '', 'Twenty', 'Thirty', 'Forty', 'Fifty', 'Sixty', 'Seventy', 'Eighty', 'Ninety'];

/** 1..99 -> "Seven", "Nineteen", "Forty", "Thirty-Three". */
function belowHundred(n: number): string {
  if (n < 20) return ONES[n]!;
  const tens = TENS[Math.floor(n / 10)]!;
  return n % 10 === 0 ? tens : `${tens}-${ONES[n % 10]!}`;
}

/** 1..999 -> "Six Hundred Thirty"; no "and", as Indian and US invoices both write it. */
function belowThousand(n: number): string {
  const hundreds = Math.floor(n / 100);
  const rest = n % 100;
  const parts: string[] = [];
  if (hundreds > 0) parts.push(`${ONES[hundreds]!} Hundred`);
  if (rest > 0) parts.push(belowHundred(rest));
  return parts.join(' ');
}

/** A positive whole number in the Indian system; the crore count is itself spelled in it. */
function indian(n: number): string {
  const crore = Math.floor(n / 10_000_000);
  const lakh = Math.floor(n / 100_000) % 100;
  const thousand = Math.floor(n / 1_000) % 100;
  const rest = n % 1_000;
  const parts: string[] = [];
  if (crore > 0) parts.push(`${indian(crore)} Crore`);
  if (lakh > 0) parts.push(`${belowHundred(lakh)} Lakh`);
  if (thousand > 0) parts.push(`${belowHundred(thousand)} Thousand`);
  if (rest > 0) parts.push(belowThousand(rest));
  return parts.join(' ');
}

const SCALES = ['', 'Thousand', 'Million', 'Billion', 'Trillion'];

/** A positive whole number below 10^15 in the international (short-scale) system. */
function international(n: number): string {
  const parts: string[] = [];
  for (let scale = 0; n > 0; scale++, n = Math.floor(n / 1_000)) {
    const group = n % 1_000;
    if (group > 0) parts.unshift(scale === 0 ? belowThousand(group) : `${belowThousand(group)} ${SCALES[scale]!}`);
  }
  return parts.join(' ');
}

const NAMES: Record<Currency, { major: string; minor: string; minorOne: string; spell: (n: number) => string }> = {
  INR: { major: 'Indian Rupees', minor: 'Paise', minorOne: 'Paisa', spell: indian },
  USD: { major: 'US Dollars', minor: 'Cents', minorOne: 'Cent', spell: international },
};

/** `minor` is a whole, non-negative count of paise or cents, at most 10^15. */
export function amountInWords(minor: number, currency: Currency): string {
  if (!Number.isInteger(minor) || minor < 0 || minor > MAX_AMOUNT_IN_WORDS) {
    throw new RangeError(`amountInWords needs a whole number of minor units from 0 to 10^15, got ${minor}`);
  }
  const names = NAMES[currency];
  const major = Math.floor(minor / 100);
  const cents = minor % 100;
  const majorWords = major === 0 ? 'Zero' : names.spell(major);
  const minorWords = cents === 0 ? '' : ` and ${belowHundred(cents)} ${cents === 1 ? names.minorOne : names.minor}`;
  return `${names.major} ${majorWords}${minorWords} Only`;
}
