/**
 * GSTIN: India's 15-character GST identification number.
 *
 *   27 AAPFU0939F 1 Z V
 *   |  |          | | check character (mod 36 over the first 14)
 *   |  |          | '- position 14: 'Z' on nearly every GSTIN, but any letter or digit is accepted
 *   |  |          '--- entity code: the holder's registration number in that state, 1-9 then A-Z
 *   |  '-------------- the holder's PAN: five letters, four digits, a letter
 *   '----------------- GST state code
 */

/** GST state codes and the state or union territory each stands for. */
export const GST_STATES: Readonly<Record<string, string>> = Object.freeze({
  '01': 'Jammu and Kashmir',
  '02': 'Himachal Pradesh',
  '03': 'Punjab',
  '04': 'Chandigarh',
  '05': 'Uttarakhand',
  '06': 'Haryana',
  '07': 'Delhi',
  '08': 'Rajasthan',
  '09': 'Uttar Pradesh',
  '10': 'Bihar',
  '11': 'Sikkim',
  '12': 'Arunachal Pradesh',
  '13': 'Nagaland',
  '14': 'Manipur',
  '15': 'Mizoram',
  '16': 'Tripura',
  '17': 'Meghalaya',
  '18': 'Assam',
  '19': 'West Bengal',
  '20': 'Jharkhand',
  '21': 'Odisha',
  '22': 'Chhattisgarh',
  '23': 'Madhya Pradesh',
  '24': 'Gujarat',
  // 25 was Daman and Diu until the merger with Dadra and Nagar Haveli on 26 January 2020.
  '26': 'Dadra and Nagar Haveli and Daman and Diu',
  '27': 'Maharashtra',
  '28': 'Andhra Pradesh (old)',
  '29': 'Karnataka',
  '30': 'Goa',
  '31': 'Lakshadweep',
  '32': 'Kerala',
  '33': 'Tamil Nadu',
  '34': 'Puducherry',
  '35': 'Andaman and Nicobar Islands',
  '36': 'Telangana',
  '37': 'Andhra Pradesh',
  '38': 'Ladakh',
  '97': 'Other Territory',
  '99': 'Centre Jurisdiction',
});

export type GstinCheck =
  | { ok: true; gstin: string; stateCode: string; pan: string }
  | { ok: false; problem: string };

const CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** The check character for the first 14 characters of a GSTIN (upper-case letters and digits). */
export function gstinCheckChar(first14: string): string {
  if (!/^[0-9A-Z]{14}$/.test(first14)) {
    throw new RangeError(`gstinCheckChar needs 14 upper-case letters or digits, got ${JSON.stringify(first14)}`);
  }
  let sum = 0;
  for (let i = 0; i < 14; i++) {
    const product = CHARS.indexOf(first14[i]!) * (i % 2 === 0 ? 1 : 2);
    sum += Math.floor(product / 36) + (product % 36);
  }
  return CHARS[(36 - (sum % 36)) % 36]!;
}

// What each position holds, for the messages; positions are 1-based as people count them.
const DIGIT = /[0-9]/;
const LETTER = /[A-Z]/;
const PAN_SHAPE: ReadonlyArray<RegExp> = [LETTER, LETTER, LETTER, LETTER, LETTER, DIGIT, DIGIT, DIGIT, DIGIT, LETTER];

const shown = (ch: string): string => JSON.stringify(ch);
const fail = (problem: string): GstinCheck => ({ ok: false, problem });

/**
 * Checks a GSTIN as a customer typed it: surrounding spaces and lower case are forgiven.
 * On failure, `problem` is one sentence saying what is wrong, fit to show the customer.
 */
export function checkGstin(input: string): GstinCheck {
  const gstin = input.trim().toUpperCase();
  if (gstin.length !== 15) {
    return fail(`A GSTIN has 15 characters; this one has ${gstin.length}.`);
  }
  for (let i = 0; i < 15; i++) {
    if (!CHARS.includes(gstin[i]!)) {
      return fail(`The character at position ${i + 1} (${shown(gstin[i]!)}) is not a letter or a digit.`);
    }
  }

  const stateCode = gstin.slice(0, 2);
  for (let i = 0; i < 2; i++) {
    if (!DIGIT.test(gstin[i]!)) {
      return fail(`The character at position ${i + 1} must be a digit of the state code, not ${shown(gstin[i]!)}.`);
    }
  }
  if (GST_STATES[stateCode] === undefined) {
    const hint = stateCode === '25' ? ' (Daman and Diu has used 26 since 26 January 2020)' : '';
    return fail(`Unknown state code ${stateCode}${hint}.`);
  }

  const pan = gstin.slice(2, 12);
  for (let i = 0; i < 10; i++) {
    if (!PAN_SHAPE[i]!.test(pan[i]!)) {
      const want = PAN_SHAPE[i] === DIGIT ? 'a digit' : 'a letter';
      return fail(
        `Positions 3-12 must be a PAN (five letters, four digits, a letter), but ${pan} is not: ` +
          `the character at position ${i + 3} (${shown(pan[i]!)}) must be ${want}.`,
      );
    }
  }

  if (gstin[12] === '0') {
    return fail('The character at position 13 (the entity code) must be 1-9 or A-Z, not "0".');
  }

  const expected = gstinCheckChar(gstin.slice(0, 14));
  if (gstin[14] !== expected) {
    return fail(`The check character is ${gstin[14]}, expected ${expected}; a character may have been mistyped.`);
  }
  return { ok: true, gstin, stateCode, pan };
}
