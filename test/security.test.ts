import t from 'tap';
import type { Scope } from '../src/modules/auth/domain.js';
import { createAccount, setup } from './helper.js';

// For each scope, a key that lacks it.
const lacking: Record<Scope, Scope[]> = { read: ['kyc'], write: ['read', 'kyc'], kyc: ['write'], ops: ['write', 'kyc'] };

const sampleParams: Record<string, string> = { planId: 'plan_starter_v1', number: '%2B919876543210' };

t.test('every /v1 route: no key 401, a key without the scope 403, another account 404', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  const b = await createAccount(ctx);
  const boundToA = await ctx.key(['read', 'write'], a.id);
  const doc = ctx.app.swagger() as { paths: Record<string, Record<string, { security?: Array<Record<string, string[]>> }>> };

  let routes = 0;
  let accountRoutes = 0;
  for (const [path, operations] of Object.entries(doc.paths)) {
    if (!path.startsWith('/v1')) continue;
    for (const [method, operation] of Object.entries(operations)) {
      routes++;
      const scope = operation.security?.[0]?.bearerAuth?.[0] as Scope | undefined;
      t.ok(scope, `${method} ${path} documents its scope`);
      const url = (accountId: string) =>
        path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'accountId' ? accountId : sampleParams[name] ?? 'x'));
      const verb = method.toUpperCase() as 'GET';
      const body = ['POST', 'PUT', 'PATCH'].includes(verb) ? {} : undefined;

      const noKey = await ctx.call(verb, url(b.id), { key: null, body });
      t.equal(noKey.status, 401, `${verb} ${path} without a key`);
      t.equal(noKey.body.code, 'unauthenticated');
      const badKey = await ctx.call(verb, url(b.id), { key: 'bsk_not-a-real-key', body });
      t.equal(badKey.status, 401, `${verb} ${path} with an unknown key`);

      const weak = await ctx.key(lacking[scope!]);
      const weakRes = await ctx.call(verb, url(b.id), { key: weak, body });
      t.equal(weakRes.status, 403, `${verb} ${path} with a key lacking ${scope}`);
      t.equal(weakRes.body.code, 'insufficient_scope');

      if (path.includes('{accountId}')) {
        accountRoutes++;
        const other = await ctx.call(verb, url(b.id), { key: boundToA, body });
        t.equal(other.status, 404, `${verb} ${path}: a key bound to A gets 404 for B`);
        t.equal(other.body.code, 'account_not_found');
      }
    }
  }
  t.ok(routes >= 13, `checked ${routes} routes`);
  t.ok(accountRoutes >= 6, `checked ${accountRoutes} account routes`);
});

t.test('a bound key reaches its own account and nothing wider', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  await createAccount(ctx);
  const key = await ctx.key(['read', 'write'], a.id);
  t.equal((await ctx.call('GET', `/v1/accounts/${a.id}`, { key })).status, 200);
  t.equal((await ctx.call('GET', `/v1/accounts/${a.id}/entitlements`, { key })).status, 200);
  const list = await ctx.call('GET', '/v1/accounts', { key });
  t.same(list.body.data.map((x: any) => x.id), [a.id], 'lists only its own account');
  const create = await ctx.call('POST', '/v1/accounts', { key, body: { name: 'x', email: 'x@example.com', country: 'US' } });
  t.equal(create.status, 403);
  t.equal(create.body.code, 'account_bound_key');
});

t.test('bound keys cannot hold operator scopes', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  await t.rejects(ctx.services.auth.createApiKey({ name: 'x', scopes: ['ops'], accountId: a.id }), /read and write/);
  await t.rejects(ctx.services.auth.createApiKey({ name: 'x', scopes: ['kyc'], accountId: a.id }), /read and write/);
});

t.test('keys are stored hashed: the database never holds the key', async (t) => {
  const ctx = await setup(t);
  const created = await ctx.services.auth.createApiKey({ name: 'hash check', scopes: ['read'] });
  t.match(created.key, /^bsk_[A-Za-z0-9_-]{43}$/, '256 random bits behind a readable prefix');
  const { rows } = await ctx.query('select * from api_keys where id = $1', [created.id]);
  t.equal(rows.length, 1);
  t.notOk(JSON.stringify(rows).includes(created.key.slice(4)), 'no column holds the key');
  t.match(rows[0].hash, /^[0-9a-f]{64}$/, 'an HMAC-SHA256, hex');
  t.equal(rows[0].hash_kid, 'dev-insecure', 'under the pepper of the first SECRETS_KEYS key');
});

t.test('changing BOOTSTRAP_API_KEY rotates it: the old one stops working', async (t) => {
  const ctx = await setup(t);
  const first = 'bsk_first-operator-chosen-key-0123456789';
  const second = 'bsk_second-operator-chosen-key-987654321';
  t.equal(await ctx.services.auth.registerBootstrapKey(first), true);
  t.equal(await ctx.services.auth.registerBootstrapKey(first), false, 'a restart with the same key changes nothing');
  t.equal((await ctx.call('GET', '/v1/plans', { key: first })).status, 200);
  await ctx.services.auth.registerBootstrapKey(second);
  // Rotated by another process (ctx.services): the api hears of it through the change feed.
  await ctx.app.changes.sync();
  t.equal((await ctx.call('GET', '/v1/plans', { key: first })).status, 401, 'the old bootstrap key is revoked');
  t.equal((await ctx.call('GET', '/v1/plans', { key: second })).status, 200);
  const { rows } = await ctx.query("select prefix from api_keys where name = 'bootstrap'");
  t.ok(rows.every((r: any) => r.prefix.length <= 7), 'little of an operator-chosen key is stored in clear');
});
