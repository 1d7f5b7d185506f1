import { isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max';

/**
 * Returns the number in E.164 form when `input` is written in E.164 (a plus, then digits)
 * and is a valid number of its country's numbering plan; otherwise null.
 */
export function toE164(input: string): string | null {
  if (!/^\+[1-9]\d{6,14}$/.test(input)) return null;
  const parsed = parsePhoneNumberFromString(input);
  if (!parsed?.isValid()) return null;
  return parsed.number;
}

export const isKnownCountry = (code: string): boolean => /^[A-Z]{2}$/.test(code) && isSupportedCountry(code);
