import { randomBytes } from 'node:crypto';
import t from 'tap';
import { loadConfig, secretsKeysOf } from '../../src/config.js';
import { createSecretBox, developmentKeyRing, isSealed, keyIdOf, parseKeyRing, type SecretKey } from '../../src/lib/secret-box.js';
import { createKeyHasher, legacyKeyHash } from '../../src/modules/auth/domain.js';
import { maskVpa } from '../../src/modules/payments/methods.js';

const key = (id: string): SecretKey => ({ id, key: randomBytes(32) });
const k1 = key('k1');
const k2 = key('k2');
const refused = { name: 'SecretBoxError' };

t.test('a sealed secret opens again, bound to its row, and says which key sealed it', async (t) => {
  const box = createSecretBox([k1]);
  const sealed = box.seal('whsec_abc', 'we_1');
  t.match(sealed, /^enc:v1:k1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
  t.notMatch(sealed, /whsec_abc/);
  t.equal(box.open(sealed, 'we_1'), 'whsec_abc');
  t.not(box.seal('whsec_abc', 'we_1'), sealed, 'a fresh IV each time');
  t.ok(isSealed(sealed));
  t.equal(keyIdOf(sealed), 'k1');
  t.equal(keyIdOf('whsec_plain'), null);
});

t.test('another row, a tampered value or an unknown key does not open', async (t) => {
  const box = createSecretBox([k1]);
  const sealed = box.seal('whsec_abc', 'we_1');
  t.throws(() => box.open(sealed, 'we_2'), refused, 'moved to another row: AAD mismatch');
  const parts = sealed.split(':');
  const body = Buffer.from(parts[4]!, 'base64url');
  body[0] = body[0]! ^ 1;
  t.throws(() => box.open([...parts.slice(0, 4), body.toString('base64url')].join(':'), 'we_1'), refused, 'a flipped bit');
  t.throws(() => box.open(sealed.replace('enc:v1:k1:', 'enc:v1:k9:'), 'we_1'), /k9, which SECRETS_KEYS no longer holds/, 'an unknown key id');
  t.throws(() => createSecretBox([key('k1')]).open(sealed, 'we_1'), refused, 'the same key id with another key');
  t.throws(() => box.open('enc:v1:k1:short', 'we_1'), refused, 'malformed');
});

t.test('rotation: the new first key seals, the old one still opens, reseal moves a value to the new key', async (t) => {
  const old = createSecretBox([k1]);
  const rotated = createSecretBox([k2, k1]);
  const before = old.seal('whsec_abc', 'we_1');
  t.equal(rotated.open(before, 'we_1'), 'whsec_abc', 'old-key value opens after rotation');
  const moved = rotated.reseal(before, 'we_1');
  t.equal(keyIdOf(moved), 'k2');
  t.equal(rotated.reseal(moved, 'we_1'), moved, 'idempotent: already under the first key');
  t.equal(keyIdOf(rotated.reseal('whsec_legacy', 'we_1')), 'k2', 'a plain legacy value is sealed');
  t.equal(rotated.reveal('whsec_legacy', 'we_1'), 'whsec_legacy', 'and reads as itself until then');
  t.throws(() => createSecretBox([k2]).open(before, 'we_1'), refused, 'once the old key is removed, its values are gone');
});

t.test('SECRETS_KEYS: parsed, checked with one readable line, required in production', async (t) => {
  const b64 = randomBytes(32).toString('base64');
  const ring = parseKeyRing(`new:${b64},old:${randomBytes(32).toString('base64')}`);
  t.same(Array.isArray(ring) && ring.map((k) => k.id), ['new', 'old']);
  t.match(parseKeyRing('nokey'), /kid:base64key/);
  t.match(parseKeyRing(`a:${randomBytes(16).toString('base64')}`), /32 bytes/);
  t.match(parseKeyRing(`a:${b64},a:${b64}`), /twice/);
  t.throws(() => loadConfig({ SECRETS_KEYS: 'a:short' }), /^Invalid configuration: SECRETS_KEYS: key a must be 32 bytes .*\(got "\[redacted\]"\)$/);
  const seller = { SELLER_LEGAL_NAME: 'Seller Private Limited', SELLER_ADDRESS: '1 MG Road, Bengaluru 560001', SELLER_GSTIN: '29AABCE1234F1Z1' };
  const prod = { NODE_ENV: 'production', DATABASE_URL: 'postgres://b@db/b', SMTP_URL: 'smtp://mail:25', ...seller };
  t.throws(() => loadConfig(prod), /^Invalid configuration: SECRETS_KEYS: is required when NODE_ENV=production/);
  t.equal(secretsKeysOf(loadConfig({ ...prod, SECRETS_KEYS: `k1:${b64}` }))[0]!.id, 'k1');
  t.equal(secretsKeysOf(loadConfig({}))[0]!.id, 'dev-insecure', 'development falls back to the public key');
  t.equal(developmentKeyRing[0]!.key.length, 32);
});

t.test('API key hashes: an HMAC under a pepper, not SHA-256; older forms are still candidates', async (t) => {
  const before = createKeyHasher([k1]);
  const after = createKeyHasher([k2, k1]);
  const apiKey = 'bsk_chosen-by-an-operator-0123456789abcdef';
  const stored = before.hash(apiKey);
  t.equal(stored.hashKid, 'k1');
  t.match(stored.hash, /^[0-9a-f]{64}$/);
  t.not(stored.hash, legacyKeyHash(apiKey), 'not the plain SHA-256 a stolen table could test guesses against');
  t.not(createKeyHasher([key('k1')]).hash(apiKey).hash, stored.hash, 'another pepper, another hash');
  const forms = after.candidates(apiKey);
  t.same(forms.map((f) => f.hashKid), ['k2', 'k1', null], 'current, older pepper, legacy');
  t.equal(forms[1]!.hash, stored.hash);
  t.equal(forms[2]!.hash, legacyKeyHash(apiKey));
  t.same(after.fromLegacy(legacyKeyHash(apiKey)), after.hash(apiKey), 'a legacy row converts without the key');
});

t.test('a VPA is masked to what may be shown', async (t) => {
  t.equal(maskVpa('rahul.sharma@okhdfc'), 'ra***@okhdfc');
  t.equal(maskVpa('success@upi'), 'su***@upi');
  t.equal(maskVpa('ra@ybl'), 'r***@ybl', 'never half of a short name');
});
