import t from 'tap';
import { kycTransition, outboundOf, type KycStatus } from '../../src/modules/accounts/domain.js';
import { generateApiKey, grants, parseBearer, validateKeyScopes, type Scope } from '../../src/modules/auth/domain.js';
import { customEnterpriseEntitlements } from '../../src/modules/catalog/domain.js';
import { trialEntitlementsExample } from '../../src/modules/catalog/entitlements.js';
import { newId } from '../../src/lib/ids.js';
import { currencyForCountry } from '../../src/lib/money.js';
import { toE164 } from '../../src/lib/phone.js';

t.test('KYC transitions', async (t) => {
  const table: Array<[KycStatus, KycStatus, string]> = [
    ['pending', 'submitted', 'change'],
    ['pending', 'approved', 'refused'],
    ['pending', 'rejected', 'refused'],
    ['submitted', 'approved', 'change'],
    ['submitted', 'rejected', 'change'],
    ['submitted', 'submitted', 'unchanged'],
    ['rejected', 'submitted', 'change'],
    ['rejected', 'approved', 'refused'],
    ['approved', 'submitted', 'refused'],
    ['approved', 'rejected', 'refused'],
    ['approved', 'approved', 'unchanged'],
  ];
  for (const [from, to, expected] of table) t.equal(kycTransition(from, to), expected, `${from} -> ${to}`);
});

t.test('scopes: ops implies all, write implies read', async (t) => {
  const table: Array<[Scope[], Scope, boolean]> = [
    [['ops'], 'read', true],
    [['ops'], 'kyc', true],
    [['write'], 'read', true],
    [['write'], 'kyc', false],
    [['write'], 'ops', false],
    [['read'], 'write', false],
    [['kyc'], 'read', false],
    [['read', 'kyc'], 'kyc', true],
  ];
  for (const [held, needed, expected] of table) t.equal(grants(held, needed), expected, `${held} grants ${needed}: ${expected}`);
  t.equal(validateKeyScopes([], null), 'a key needs at least one scope');
  t.ok(validateKeyScopes(['ops'], 'acc_x'));
  t.equal(validateKeyScopes(['read', 'write'], 'acc_x'), null);
});

t.test('API keys: random, prefixed, hashed', async (t) => {
  const a = generateApiKey();
  const b = generateApiKey();
  t.not(a.key, b.key);
  t.equal(Buffer.from(a.key.slice(4), 'base64url').length, 32, '256 bits');
  t.equal(a.prefix, a.key.slice(0, 10), 'bsk_ and 6 random characters');
  t.equal(parseBearer(`Bearer ${a.key}`), a.key);
  t.equal(parseBearer(`bearer ${a.key}`), a.key);
  t.equal(parseBearer(a.key), null);
  t.equal(parseBearer('Bearer a b'), null);
  t.equal(parseBearer(undefined), null);
});

t.test('ids sort by creation time', async (t) => {
  const early = newId('acc', new Date('2026-01-01T00:00:00Z'));
  const late = newId('acc', new Date('2026-01-01T00:00:00.001Z'));
  t.match(early, /^acc_[0-9a-hjkmnp-tv-z]{26}$/);
  t.ok(early < late);
  t.not(newId('acc'), newId('acc'));
});

t.test('currency follows country', async (t) => {
  t.equal(currencyForCountry('IN'), 'INR');
  t.equal(currencyForCountry('US'), 'USD');
  t.equal(currencyForCountry('GB'), 'USD');
});

t.test('E.164 validation', async (t) => {
  t.equal(toE164('+919876543210'), '+919876543210');
  t.equal(toE164('+14155550123'), '+14155550123');
  t.equal(toE164('919876543210'), null, 'no plus');
  t.equal(toE164('+91 98765 43210'), null, 'spaces');
  t.equal(toE164('+11234567890'), null, 'not a valid number of its plan');
  t.equal(toE164('+9198765432101234'), null, 'too long');
});

t.test('outbound follows plan and status', async (t) => {
  const paid = { ...trialEntitlementsExample, numberWhitelisting: { required: false } };
  t.equal(outboundOf('trial', trialEntitlementsExample), 'whitelisted_only');
  t.equal(outboundOf('active', paid), 'any');
  t.equal(outboundOf('past_due', paid), 'any');
  t.equal(outboundOf('limited', paid), 'blocked');
});

t.test('custom Enterprise entitlements override only what sales agreed', async (t) => {
  const custom = customEnterpriseEntitlements(trialEntitlementsExample, {
    exophoneLimit: null,
    callRecordingRetentionDays: 400,
    slaUptimePercent: 99.99,
    apiRateLimitPerMinute: 9000,
  });
  t.same(custom.exophones, { limit: null, trialNumbers: 1 });
  t.same(custom.callRecording, { retentionDays: 400, custom: true });
  t.same(custom.sla, { uptimePercent: 99.99, custom: true });
  t.same(custom.apiRateLimit, { tier: 'custom', requestsPerMinute: 9000 });
  t.equal(custom.campaigns, trialEntitlementsExample.campaigns, 'the rest is kept');
});
