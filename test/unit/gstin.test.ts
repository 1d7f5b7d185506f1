import t from 'tap';
import { checkGstin, GST_STATES, gstinCheckChar } from '../../src/lib/gstin.js';

// Published GSTINs: Nirma University (Gujarat AAAR order GUJ/GAAAR/APPEAL/2021/09),
// Patle Eduskills Foundation (Maharashtra AAR order GST-ARA-53/2020-21/B-78), and a
// sample GSTIN common in GST developer material.
const published = ['24AAATT6829N1ZY', '27AAJCP8025A1ZL', '27AAPFU0939F1ZV'];

t.test('published GSTINs validate', async (t) => {
  for (const gstin of published) {
    t.same(checkGstin(gstin), { ok: true, gstin, stateCode: gstin.slice(0, 2), pan: gstin.slice(2, 12) }, gstin);
  }
});

t.test('the check character follows the mod-36 algorithm', async (t) => {
  t.equal(gstinCheckChar('24AAATT6829N1Z'), 'Y');
  t.equal(gstinCheckChar('27AAJCP8025A1Z'), 'L');
  t.equal(gstinCheckChar('27AAPFU0939F1Z'), 'V');
  // Worked by hand: values 2,9,10,10,10,12,14,1,2,3,4,15,1,35 with factors 1,2,1,2,...
  // give products whose base-36 digit sums total 178; (36 - 178 % 36) % 36 = 2.
  t.equal(gstinCheckChar('29AAACE1234F1Z'), '2');
  t.ok(checkGstin(`29AAACE1234F1Z${gstinCheckChar('29AAACE1234F1Z')}`).ok, 'a computed check character validates');
});

t.test('gstinCheckChar refuses anything but 14 upper-case letters or digits', async (t) => {
  t.throws(() => gstinCheckChar('27AAPFU0939F1'), RangeError);
  t.throws(() => gstinCheckChar('27AAPFU0939F1ZV'), RangeError);
  t.throws(() => gstinCheckChar('27aapfu0939f1z'), RangeError);
  t.throws(() => gstinCheckChar('27AAPFU0939F-Z'), RangeError);
});

t.test('lower case and surrounding spaces are normalised', async (t) => {
  t.same(checkGstin('  27aapfu0939f1zv\n'), { ok: true, gstin: '27AAPFU0939F1ZV', stateCode: '27', pan: 'AAPFU0939F' });
});

t.test('one changed character fails on the check character', async (t) => {
  // The PAN's last digit 9 -> 8: still well-formed, so only the checksum catches it.
  const result = checkGstin('27AAPFU0938F1ZV');
  t.same(result, { ok: false, problem: `The check character is V, expected ${gstinCheckChar('27AAPFU0938F1Z')}; a character may have been mistyped.` });
  t.same(checkGstin('27AAPFU0939F1ZW'), { ok: false, problem: 'The check character is W, expected V; a character may have been mistyped.' });
  // Two adjacent characters swapped.
  t.match(checkGstin('24AAATT6892N1ZY'), { ok: false, problem: /^The check character is Y, expected / });
});

t.test('the wrong length is named', async (t) => {
  t.same(checkGstin('27AAPFU0939F1Z'), { ok: false, problem: 'A GSTIN has 15 characters; this one has 14.' });
  t.same(checkGstin('27AAPFU0939F1ZVX'), { ok: false, problem: 'A GSTIN has 15 characters; this one has 16.' });
  t.same(checkGstin('   '), { ok: false, problem: 'A GSTIN has 15 characters; this one has 0.' });
});

t.test('a character that is not a letter or digit is named by position', async (t) => {
  t.same(checkGstin('27AAPFU-939F1ZV'), { ok: false, problem: 'The character at position 8 ("-") is not a letter or a digit.' });
  t.same(checkGstin('27AAPFU 939F1ZV'), { ok: false, problem: 'The character at position 8 (" ") is not a letter or a digit.' });
});

t.test('the state code must be two digits and a known code', async (t) => {
  t.same(checkGstin('2AAAPFU0939F1ZV'), { ok: false, problem: 'The character at position 2 must be a digit of the state code, not "A".' });
  t.same(checkGstin('00AAPFU0939F1ZV'), { ok: false, problem: 'Unknown state code 00.' });
  t.same(checkGstin('39AAPFU0939F1ZV'), { ok: false, problem: 'Unknown state code 39.' });
  t.same(checkGstin('98AAPFU0939F1ZV'), { ok: false, problem: 'Unknown state code 98.' });
  t.same(checkGstin('25AAPFU0939F1ZV'), { ok: false, problem: 'Unknown state code 25 (Daman and Diu has used 26 since 26 January 2020).' });
});

t.test('every code in the table passes the state check; 97 and 99 included', async (t) => {
  t.equal(Object.keys(GST_STATES).length, 39);
  for (const code of Object.keys(GST_STATES)) {
    const first14 = `${code}AAPFU0939F1Z`;
    t.ok(checkGstin(first14 + gstinCheckChar(first14)).ok, `${code} ${GST_STATES[code]}`);
  }
  t.equal(GST_STATES['97'], 'Other Territory');
  t.equal(GST_STATES['99'], 'Centre Jurisdiction');
  t.equal(GST_STATES['37'], 'Andhra Pradesh');
  t.equal(GST_STATES['38'], 'Ladakh');
  t.ok(Object.isFrozen(GST_STATES));
});

t.test('the PAN must be five letters, four digits, a letter', async (t) => {
  t.same(checkGstin('27AAPF10939F1ZV'), {
    ok: false,
    problem: 'Positions 3-12 must be a PAN (five letters, four digits, a letter), but AAPF10939F is not: the character at position 7 ("1") must be a letter.',
  });
  t.match(checkGstin('27AAPFUO939F1ZV'), { ok: false, problem: /position 8 \("O"\) must be a digit/ });
  t.match(checkGstin('27AAPFU09391ZZV'), { ok: false, problem: /position 12 \("1"\) must be a letter/ });
});

t.test('the entity code may not be 0', async (t) => {
  t.same(checkGstin('27AAPFU0939F0ZV'), { ok: false, problem: 'The character at position 13 (the entity code) must be 1-9 or A-Z, not "0".' });
  const lettered = '27AAPFU0939FAZ';
  t.ok(checkGstin(lettered + gstinCheckChar(lettered)).ok, 'a letter entity code (10th+ registration) is fine');
});

t.test('position 14 is usually Z but any letter or digit is accepted', async (t) => {
  for (const ch of ['Z', 'Y', '9']) {
    const first14 = `27AAPFU0939F1${ch}`;
    t.ok(checkGstin(first14 + gstinCheckChar(first14)).ok, ch);
  }
});
