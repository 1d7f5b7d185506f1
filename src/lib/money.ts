import { z } from 'zod';

/** Money is an integer count of minor units (paise, cents) with its ISO currency. */
export const currencySchema = z.enum(['INR', 'USD']).meta({ description: 'ISO 4217 currency code' });
export type Currency = z.infer<typeof currencySchema>;

export const minorUnitsSchema = z
  .number()
  .int()
  .min(0)
  .max(Number.MAX_SAFE_INTEGER)
  .meta({ description: 'Amount in minor units of the currency (paise, cents)' });

/** Amounts a caller may send: up to 10^12 minor units, so every total stays an exact integer. */
export const amountInputSchema = z
  .number()
  .int()
  .min(0)
  .max(1_000_000_000_000)
  .meta({ description: 'Amount in minor units of the currency (paise, cents), at most 10^12' });

/** Accounts in India bill in INR, everyone else in USD. */
export const currencyForCountry = (country: string): Currency => (country === 'IN' ? 'INR' : 'USD');

/** a x numerator / denominator, rounded half-up, in exact integer arithmetic. */
export function mulDivHalfUp(a: number, numerator: number, denominator: number): number {
  const product = BigInt(a) * BigInt(numerator);
  const d = BigInt(denominator);
  const result = (product * 2n + d) / (2n * d);
  return Number(result);
}

/** The part of `amount` that `bps` basis points make, rounded half-up. */
export const bpsOf = (amount: number, bps: number): number => mulDivHalfUp(amount, bps, 10_000);

/** 359900 INR -> "INR 3,599.00" (Indian digit grouping for INR); for emails and PDFs only. */
export function formatMoney(amount: number, currency: Currency): string {
  const sign = amount < 0 ? '-' : '';
  const abs = Math.abs(amount);
  const major = Math.floor(abs / 100).toLocaleString(currency === 'INR' ? 'en-IN' : 'en-US');
  return `${sign}${currency} ${major}.${String(abs % 100).padStart(2, '0')}`;
}
