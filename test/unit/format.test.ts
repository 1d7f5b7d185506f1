import t from 'tap';
import { formatAmount, formatDate, formatDateTime, timeZoneForCountry } from '../../src/lib/format.js';

t.test('INR uses Indian digit grouping', async (t) => {
  t.equal(formatAmount(12345678, 'INR'), '₹1,23,456.78');
  t.equal(formatAmount(0, 'INR'), '₹0.00');
  t.equal(formatAmount(5, 'INR'), '₹0.05');
  t.equal(formatAmount(99999, 'INR'), '₹999.99');
  t.equal(formatAmount(100000, 'INR'), '₹1,000.00');
  t.equal(formatAmount(99_99_999_00, 'INR'), '₹99,99,999.00');
  t.equal(formatAmount(1_00_000_00, 'INR'), '₹1,00,000.00');
  t.equal(formatAmount(1_00_00_000_00, 'INR'), '₹1,00,00,000.00');
  t.equal(formatAmount(123_45_67_890_12, 'INR'), '₹1,23,45,67,890.12');
});

t.test('USD groups in thousands', async (t) => {
  t.equal(formatAmount(123456, 'USD'), '$1,234.56');
  t.equal(formatAmount(99, 'USD'), '$0.99');
  t.equal(formatAmount(100_000_00, 'USD'), '$100,000.00');
  t.equal(formatAmount(1_234_567_890_12, 'USD'), '$1,234,567,890.12');
});

t.test('negatives put the sign before the symbol', async (t) => {
  t.equal(formatAmount(-50000, 'INR'), '-₹500.00');
  t.equal(formatAmount(-12345678, 'INR'), '-₹1,23,456.78');
  t.equal(formatAmount(-1, 'USD'), '-$0.01');
});

t.test('fractional or unsafe amounts are refused', async (t) => {
  t.throws(() => formatAmount(1.5, 'INR'), RangeError);
  t.throws(() => formatAmount(Number.NaN, 'USD'), RangeError);
  t.throws(() => formatAmount(2 ** 53, 'USD'), RangeError);
});

const at = new Date('2026-12-02T05:00:00Z');

t.test('date and time in the customer\'s zone, with a stable short zone name', async (t) => {
  t.equal(formatDateTime(at, 'Asia/Kolkata'), '2 Dec 2026, 10:30 IST');
  t.equal(formatDateTime(at, 'UTC'), '2 Dec 2026, 05:00 UTC');
  t.equal(formatDateTime(at, 'America/New_York'), '2 Dec 2026, 00:00 EST');
  t.equal(formatDateTime(new Date('2026-12-02T04:00:00Z'), 'America/New_York'), '1 Dec 2026, 23:00 EST');
  t.equal(formatDateTime(new Date('2026-07-04T16:05:00Z'), 'America/New_York'), '4 Jul 2026, 12:05 EDT');
});

t.test('midnight is 00, not 24, and single-digit hours are padded', async (t) => {
  t.equal(formatDateTime(new Date('2026-01-01T00:00:00Z'), 'UTC'), '1 Jan 2026, 00:00 UTC');
  t.equal(formatDateTime(new Date('2026-01-01T03:31:00Z'), 'Asia/Kolkata'), '1 Jan 2026, 09:01 IST');
});

t.test('September is "Sep", whatever the ICU data says for en-GB', async (t) => {
  t.equal(formatDate(new Date('2026-09-15T12:00:00Z'), 'UTC'), '15 Sep 2026');
});

t.test('the date follows the zone across midnight', async (t) => {
  t.equal(formatDate(at, 'Asia/Kolkata'), '2 Dec 2026');
  t.equal(formatDate(new Date('2026-12-01T20:00:00Z'), 'Asia/Kolkata'), '2 Dec 2026');
  t.equal(formatDate(new Date('2026-12-01T20:00:00Z'), 'UTC'), '1 Dec 2026');
  t.equal(formatDate(new Date('2026-12-02T03:00:00Z'), 'America/New_York'), '1 Dec 2026');
});

t.test('an invalid zone or date throws', async (t) => {
  t.throws(() => formatDateTime(at, 'Mars/Olympus'), RangeError);
  t.throws(() => formatDate(new Date(Number.NaN), 'UTC'), RangeError);
});

t.test('time zone by country', async (t) => {
  t.equal(timeZoneForCountry('IN'), 'Asia/Kolkata');
  t.equal(timeZoneForCountry('US'), 'America/New_York');
  t.equal(timeZoneForCountry('GB'), 'UTC');
  t.equal(timeZoneForCountry(''), 'UTC');
});
