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

/** Accounts in India bill in INR, everyone else in USD. */
export const currencyForCountry = (country: string): Currency => (country === 'IN' ? 'INR' : 'USD');
