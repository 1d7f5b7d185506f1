import t from 'tap';
import { loggerOptions } from '../src/lib/logger.js';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { createAccount, setup } from './helper.js';

const keyPattern = /^bsk_[\w-]{43}$/;

t.test('ops makes a key over HTTP: its secret is shown once and works with its scopes, and only them', async (t) => {
  const ctx = await setup(t);
  const made = await ctx.call('POST', '/v1/api-keys', { body: { name: 'kyc-service', scopes: ['kyc'] } });
  t.equal(made.status, 201);
  t.match(made.body, { id: /^key_[0-9a-z]{26}$/, name: 'kyc-service', scopes: ['kyc'], accountId: null, revokedAt: null, createdAt: '2026-11-26T10:00:00.000Z' });
  t.match(made.body.key, keyPattern);
  t.equal(made.body.prefix, made.body.key.slice(0, 10), 'the prefix recognises it');
  t.notOk(made.body.hash, 'no hash');

  // The secret is stored nowhere: not in the key's row, not in the audit log.
  const row = (await ctx.query('select * from api_keys where id = $1', [made.body.id])).rows[0];
  t.not(row.hash, made.body.key);
  t.notOk(JSON.stringify(row).includes(made.body.key.slice(4)), 'the row holds no secret');
  const audit = (await ctx.query("select * from audit_events where action = 'api_key.create' and target = $1", [made.body.id])).rows;
  t.equal(audit.length, 1, 'audited once');
  t.ok(audit[0].actor_key_id.startsWith('key_'), 'by the calling key');
  t.ok(audit[0].request_id, 'with the request id');
  t.same(audit[0].details, { name: 'kyc-service', scopes: ['kyc'], prefix: made.body.prefix });
  t.notOk(JSON.stringify(audit).includes(made.body.key), 'the audit log holds no secret');

  // The new key works for what its scope allows, at once...
  const account = await createAccount(ctx);
  const kyc = await ctx.call('PUT', `/v1/accounts/${account.id}/kyc`, { key: made.body.key, body: { status: 'submitted' } });
  t.equal(kyc.status, 200, 'the kyc key sets KYC status');
  // ...and for nothing else.
  const read = await ctx.call('GET', `/v1/accounts/${account.id}`, { key: made.body.key });
  t.equal(read.status, 403);
  t.equal(read.body.code, 'insufficient_scope');
  const ops = await ctx.call('GET', '/v1/api-keys', { key: made.body.key });
  t.equal(ops.status, 403, 'a kyc key cannot list keys');

  // Listed, never with its secret.
  const list = await ctx.call('GET', '/v1/api-keys');
  const listed = list.body.data.find((k: any) => k.id === made.body.id);
  t.same(listed, { id: made.body.id, name: 'kyc-service', prefix: made.body.prefix, scopes: ['kyc'], accountId: null, createdAt: made.body.createdAt, revokedAt: null });
  t.notOk(list.body.data.some((k: any) => 'key' in k || 'hash' in k || 'hashKid' in k), 'no secrets, no hashes');
});

t.test('only ops keys make, list and revoke keys', async (t) => {
  const ctx = await setup(t);
  for (const key of [ctx.keys.read, ctx.keys.write, ctx.keys.kyc]) {
    const made = await ctx.call('POST', '/v1/api-keys', { key, body: { name: 'x', scopes: ['ops'] } });
    t.equal(made.status, 403);
    t.equal(made.body.code, 'insufficient_scope');
    t.equal((await ctx.call('GET', '/v1/api-keys', { key })).status, 403);
    t.equal((await ctx.call('DELETE', '/v1/api-keys/key_00000000000000000000000000', { key })).status, 403);
  }
  t.equal((await ctx.call('GET', '/v1/api-keys', { key: null })).status, 401);
  t.equal((await ctx.query('select count(*)::int as n from api_keys')).rows[0].n, 4, 'none made');
});

t.test('a key bound to an account: read and write only, that account only; an unknown account is 404', async (t) => {
  const ctx = await setup(t);
  const mine = await createAccount(ctx);
  const other = await createAccount(ctx, { email: 'other@acme.example' });
  const made = await ctx.call('POST', '/v1/api-keys', { body: { name: 'acme portal', scopes: ['read', 'write', 'read'], accountId: mine.id } });
  t.equal(made.status, 201);
  t.same([made.body.scopes, made.body.accountId], [['read', 'write'], mine.id], 'scopes once each');
  t.equal((await ctx.call('GET', `/v1/accounts/${mine.id}`, { key: made.body.key })).status, 200);
  t.equal((await ctx.call('GET', `/v1/accounts/${other.id}`, { key: made.body.key })).status, 404, 'another account is not visible');

  for (const scopes of [['kyc'], ['ops'], ['read', 'ops']]) {
    const bad = await ctx.call('POST', '/v1/api-keys', { body: { name: 'x', scopes, accountId: mine.id } });
    t.equal(bad.status, 400, `bound with ${scopes}`);
    t.equal(bad.body.code, 'validation_failed');
    t.match(bad.body.errors, [{ path: 'body.scopes' }]);
  }
  const unknown = await ctx.call('POST', '/v1/api-keys', { body: { name: 'x', scopes: ['read'], accountId: 'acc_00000000000000000000000000' } });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.code, 'account_not_found');

  const bound = await ctx.call('GET', `/v1/api-keys?accountId=${mine.id}`);
  t.same(bound.body.data.map((k: any) => k.id), [made.body.id], 'listed by account');
});

t.test('validation: scopes, name, account id, unknown fields', async (t) => {
  const ctx = await setup(t);
  const cases: unknown[] = [
    { name: 'x', scopes: [] },
    { name: 'x', scopes: ['admin'] },
    { name: 'x', scopes: 'ops' },
    { name: 'x' },
    { scopes: ['read'] },
    { name: '   ', scopes: ['read'] },
    { name: 'x', scopes: ['read'], accountId: 'not-an-account' },
  ];
  for (const body of cases) {
    const res = await ctx.call('POST', '/v1/api-keys', { body });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.body.code, 'validation_failed');
    t.ok(res.body.errors?.length, 'says which field');
  }
  const badId = await ctx.call('DELETE', '/v1/api-keys/bsk_notanid');
  t.equal(badId.status, 400);
  const badCursor = await ctx.call('GET', '/v1/api-keys?cursor=%%%');
  t.equal(badCursor.status, 400);
  t.equal((await ctx.query('select count(*)::int as n from api_keys')).rows[0].n, 4, 'none made');
});

t.test('an idempotent retry answers the same key, without its secret, and makes no second one', async (t) => {
  const ctx = await setup(t);
  const headers = { 'idempotency-key': 'make-kyc-key-1' };
  const body = { name: 'kyc-service', scopes: ['kyc'] };
  const first = await ctx.call('POST', '/v1/api-keys', { body, headers });
  t.equal(first.status, 201);
  t.match(first.body.key, keyPattern);
  const again = await ctx.call('POST', '/v1/api-keys', { body, headers });
  t.equal(again.status, 201);
  t.equal(again.headers['idempotent-replayed'], 'true');
  const { key, ...shown } = first.body;
  t.same(again.body, shown, 'the same key, its secret not shown again');
  t.equal((await ctx.query("select count(*)::int as n from api_keys where name = 'kyc-service'")).rows[0].n, 1, 'one key made');
  t.equal((await ctx.query("select count(*)::int as n from audit_events where action = 'api_key.create' and target = $1", [first.body.id])).rows[0].n, 1, 'audited once');
  const stored = await ctx.query('select response_body from idempotency_keys');
  t.notOk(JSON.stringify(stored.rows).includes(key), 'the idempotency record holds no secret');

  const other = await ctx.call('POST', '/v1/api-keys', { body: { ...body, scopes: ['read'] }, headers });
  t.equal(other.status, 422);
  t.equal(other.body.code, 'idempotency_key_reused');
  const fresh = await ctx.call('POST', '/v1/api-keys', { body });
  t.equal(fresh.status, 201, 'without a key, another one');
  t.not(fresh.body.id, first.body.id);
});

t.test('revoking: refused on the very next request, listed with revokedAt, twice is fine, audited', async (t) => {
  const ctx = await setup(t);
  const made = (await ctx.call('POST', '/v1/api-keys', { body: { name: 'reader', scopes: ['read'] } })).body;
  t.equal((await ctx.call('GET', '/v1/plans', { key: made.key })).status, 200, 'works, and is cached');

  const revoked = await ctx.call('DELETE', `/v1/api-keys/${made.id}`);
  t.equal(revoked.status, 200);
  t.same(revoked.body, { id: made.id, name: 'reader', prefix: made.prefix, scopes: ['read'], accountId: null, createdAt: made.createdAt, revokedAt: '2026-11-26T10:00:00.000Z' });
  const next = await ctx.call('GET', '/v1/plans', { key: made.key });
  t.equal(next.status, 401, 'refused on the next request');
  t.equal(next.body.code, 'unauthenticated');

  ctx.clock.advance(60_000);
  const twice = await ctx.call('DELETE', `/v1/api-keys/${made.id}`);
  t.equal(twice.status, 200, 'revoking twice is fine');
  t.equal(twice.body.revokedAt, revoked.body.revokedAt, 'and keeps the first time');

  const listed = (await ctx.call('GET', '/v1/api-keys')).body.data.find((k: any) => k.id === made.id);
  t.equal(listed.revokedAt, revoked.body.revokedAt);

  const missing = await ctx.call('DELETE', '/v1/api-keys/key_00000000000000000000000000');
  t.equal(missing.status, 404);
  t.equal(missing.body.code, 'api_key_not_found');

  const audit = (await ctx.query("select * from audit_events where action = 'api_key.revoke' order by id")).rows;
  t.equal(audit.length, 2);
  t.same([audit[0].target, audit[0].status], [made.id, 200]);
  t.equal((await ctx.query("select count(*)::int as n from audit_events where action = 'api_key.list'")).rows[0].n, 1, 'listing is audited');
});

t.test('a key revoked by another process (ops keys:revoke) is refused once the change feed tells', async (t) => {
  const ctx = await setup(t);
  const made = (await ctx.call('POST', '/v1/api-keys', { body: { name: 'writer', scopes: ['write'] } })).body;
  t.equal((await ctx.call('GET', '/v1/plans', { key: made.key })).status, 200);
  await ctx.query('update api_keys set revoked_at = now() where id = $1', [made.id]); // waits for the notification
  t.equal((await ctx.call('GET', '/v1/plans', { key: made.key })).status, 401);
});

t.test('a key may revoke itself, but the last ops key may not be revoked', async (t) => {
  const ctx = await setup(t);
  const second = (await ctx.call('POST', '/v1/api-keys', { body: { name: 'ops 2', scopes: ['ops'] } })).body;
  const self = await ctx.call('DELETE', `/v1/api-keys/${second.id}`, { key: second.key });
  t.equal(self.status, 200, 'an ops key revokes itself while another remains');
  t.equal((await ctx.call('GET', '/v1/api-keys', { key: second.key })).status, 401, 'and is refused next');

  const list = (await ctx.call('GET', '/v1/api-keys')).body.data;
  const lastOps = list.find((k: any) => k.scopes.includes('ops') && !k.revokedAt);
  const refused = await ctx.call('DELETE', `/v1/api-keys/${lastOps.id}`);
  t.equal(refused.status, 409);
  t.equal(refused.body.code, 'last_ops_key');
  t.equal((await ctx.call('GET', '/v1/api-keys')).status, 200, 'still works');

  // Two ops keys revoking each other at once: one wins, the other is refused; one ops key is left.
  const third = (await ctx.call('POST', '/v1/api-keys', { body: { name: 'ops 3', scopes: ['ops'] } })).body;
  const [a, b] = await Promise.all([
    ctx.call('DELETE', `/v1/api-keys/${lastOps.id}`, { key: third.key }),
    ctx.call('DELETE', `/v1/api-keys/${third.id}`),
  ]);
  t.same([a.status, b.status].sort(), [200, 409]);
  const active = await ctx.query("select count(*)::int as n from api_keys where revoked_at is null and 'ops' = any(scopes)");
  t.equal(active.rows[0].n, 1);
});

t.test('the list pages by cursor, newest first', async (t) => {
  const ctx = await setup(t);
  for (let i = 0; i < 3; i++) {
    ctx.clock.advance(1000);
    await ctx.call('POST', '/v1/api-keys', { body: { name: `k${i}`, scopes: ['read'] } });
  }
  const first = await ctx.call('GET', '/v1/api-keys?limit=2');
  t.same(first.body.data.map((k: any) => k.name), ['k2', 'k1']);
  t.ok(first.body.nextCursor);
  const rest = await ctx.call('GET', `/v1/api-keys?limit=10&cursor=${first.body.nextCursor}`);
  t.same(rest.body.data.map((k: any) => k.name), ['k0', 'test', 'test', 'test', 'test']);
  t.equal(rest.body.nextCursor, null);
});

t.test('the documented operations, and a logged response body never shows the key', async (t) => {
  const ctx = await setup(t);
  await ctx.app.ready();
  const doc = ctx.app.swagger() as any;
  t.equal(doc.paths['/v1/api-keys'].post.operationId, 'createApiKey');
  t.equal(doc.paths['/v1/api-keys'].get.operationId, 'listApiKeys');
  t.equal(doc.paths['/v1/api-keys/{keyId}'].delete.operationId, 'revokeApiKey');
  t.ok(doc.components.schemas.CreatedApiKey.examples?.length);

  let out = '';
  const sink = new Writable({ write: (chunk, _enc, done) => ((out += chunk), done()) });
  const log = pino({ ...loggerOptions({ LOG_LEVEL: 'info' }) }, sink);
  log.info({ body: { id: 'key_x', key: 'bsk_secret' }, res: { key: 'bsk_secret' } }, 'made');
  t.notMatch(out, /bsk_secret/);
});
