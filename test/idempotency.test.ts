import t from 'tap';
import { canonicalJson, judge } from '../src/modules/idempotency/domain.js';
import { setup } from './helper.js';

const body = { name: 'Acme', email: 'ops@acme.example', country: 'IN' };

t.test('same key and body replays the first response and creates one account', async (t) => {
  const ctx = await setup(t);
  const headers = { 'idempotency-key': 'create-acme-1' };
  const first = await ctx.call('POST', '/v1/accounts', { body, headers });
  t.equal(first.status, 201);
  t.notOk(first.headers['idempotent-replayed']);
  const reordered = { country: 'IN', email: 'ops@acme.example', name: 'Acme' };
  const second = await ctx.call('POST', '/v1/accounts', { body: reordered, headers });
  t.equal(second.status, 201);
  t.equal(second.headers['idempotent-replayed'], 'true');
  t.same(second.body, first.body, 'the same account, byte for byte');
  const { rows } = await ctx.query('select count(*)::int as n from accounts');
  t.equal(rows[0].n, 1);
  const events = await ctx.query("select count(*)::int as n from outbox where type = 'account.created'");
  t.equal(events.rows[0].n, 1, 'one event');
});

t.test('same key with another body is 422; nothing written', async (t) => {
  const ctx = await setup(t);
  const headers = { 'idempotency-key': 'k-2' };
  t.equal((await ctx.call('POST', '/v1/accounts', { body, headers })).status, 201);
  const other = await ctx.call('POST', '/v1/accounts', { body: { ...body, name: 'Other' }, headers });
  t.equal(other.status, 422);
  t.equal(other.body.code, 'idempotency_key_reused');
  const { rows } = await ctx.query('select count(*)::int as n from accounts');
  t.equal(rows[0].n, 1);
});

t.test('concurrent duplicates: one runs, the others get 409 or the replay', async (t) => {
  const ctx = await setup(t);
  const headers = { 'idempotency-key': 'race-1' };
  const results = await Promise.all(Array.from({ length: 8 }, () => ctx.call('POST', '/v1/accounts', { body, headers })));
  const created = results.filter((r) => r.status === 201);
  t.ok(created.length >= 1);
  t.ok(results.some((r) => r.status === 409), 'duplicates in flight get 409');
  t.ok(results.every((r) => r.status === 201 || (r.status === 409 && r.body.code === 'idempotency_request_in_progress')));
  t.equal(new Set(created.map((r) => r.body.id)).size, 1, 'every 201 names the same account');
  const { rows } = await ctx.query('select count(*)::int as n from accounts');
  t.equal(rows[0].n, 1, 'one account');
});

t.test('keys are per API key; no key means no idempotency', async (t) => {
  const ctx = await setup(t);
  const headers = { 'idempotency-key': 'shared-name' };
  const a = await ctx.call('POST', '/v1/accounts', { body, headers });
  const b = await ctx.call('POST', '/v1/accounts', { body, headers, key: ctx.keys.write });
  t.not(a.body.id, b.body.id, 'another API key has its own key space');
  await ctx.call('POST', '/v1/accounts', { body });
  await ctx.call('POST', '/v1/accounts', { body });
  const { rows } = await ctx.query('select count(*)::int as n from accounts');
  t.equal(rows[0].n, 4);
  const bad = await ctx.call('POST', '/v1/accounts', { body, headers: { 'idempotency-key': 'has space' } });
  t.equal(bad.status, 400);
});

t.test('a record left in progress by a dead request is taken over after the lock timeout', async (t) => {
  const ctx = await setup(t);
  const headers = { 'idempotency-key': 'orphan' };
  t.equal((await ctx.call('POST', '/v1/accounts', { body, headers })).status, 201);
  await ctx.query("update idempotency_keys set state = 'in_progress', response_status = null, response_body = null");
  const locked = await ctx.call('POST', '/v1/accounts', { body, headers });
  t.equal(locked.status, 409, 'still locked');
  t.equal(locked.headers['retry-after'], '10', 'Retry-After: when the lock runs out');
  ctx.clock.advance(4_000);
  t.equal((await ctx.call('POST', '/v1/accounts', { body, headers })).headers['retry-after'], '6');

  // A holder that is alive renews its record: no take-over while it does.
  await ctx.query('update idempotency_keys set heartbeat_at = $1', [ctx.clock.now()]);
  ctx.clock.advance(8_000);
  const renewed = await ctx.call('POST', '/v1/accounts', { body, headers });
  t.equal(renewed.status, 409, '12 s after the lock, but renewed 8 s ago');
  t.equal(renewed.headers['retry-after'], '2');
  ctx.clock.advance(2_000);
  t.equal((await ctx.call('POST', '/v1/accounts', { body, headers })).status, 201, 'taken over 10 s after the last renewal, not 60');
});

t.test('a running request renews its record, so a retry is told to wait while the first one runs', async (t) => {
  const { HEARTBEAT_MS } = await import('../src/modules/idempotency/domain.js');
  const { heartbeat, claim, find } = await import('../src/modules/idempotency/repo.js');
  const ctx = await setup(t);
  const at = ctx.clock.now();
  const handle = { apiKeyId: 'key_x', key: 'k', lockedAt: at, completed: false };
  t.ok(await claim(ctx.database.db, { ...handle, requestHash: 'h', method: 'POST', path: '/v1/x', createdAt: at, state: 'in_progress' }));
  ctx.clock.advance(HEARTBEAT_MS);
  await heartbeat(ctx.database.db, handle, ctx.clock.now());
  const row = await find(ctx.database.db, handle);
  t.same(row?.heartbeatAt, ctx.clock.now(), 'renewed');
  t.same(row?.lockedAt, at, 'the ownership token is untouched: the holder can still record its response');
});

t.test('a failed request is replayed as it failed; validation failures are not recorded', async (t) => {
  const ctx = await setup(t);
  const invalid = await ctx.call('POST', '/v1/accounts', { body: { ...body, email: 'nope' }, headers: { 'idempotency-key': 'v-1' } });
  t.equal(invalid.status, 400);
  const { rows } = await ctx.query('select count(*)::int as n from idempotency_keys');
  t.equal(rows[0].n, 0);
});

t.test('fingerprints ignore key order; records expire after 24 hours', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }));
  const at = new Date('2026-01-01T00:00:00Z');
  const rec = { requestHash: 'h', state: 'completed' as const, createdAt: at, lockedAt: at };
  t.equal(judge(rec, 'h', new Date(at.getTime() + 1000)), 'replay');
  t.equal(judge(rec, 'x', new Date(at.getTime() + 1000)), 'mismatch');
  t.equal(judge(rec, 'x', new Date(at.getTime() + 25 * 3600_000)), 'take_over');
  t.equal(judge({ ...rec, state: 'in_progress' }, 'h', new Date(at.getTime() + 1000)), 'in_progress');
});

t.test('maintenance purges records past 24 hours and keeps the rest', async (t) => {
  const { maintenanceTasks } = await import('../src/jobs/maintenance.js');
  const ctx = await setup(t);
  await ctx.call('POST', '/v1/accounts', { body, headers: { 'idempotency-key': 'old' } });
  ctx.clock.advance(23 * 3600_000);
  await ctx.call('POST', '/v1/accounts', { body, headers: { 'idempotency-key': 'new' } });
  ctx.clock.advance(2 * 3600_000);
  const purge = maintenanceTasks({ db: ctx.database.db, clock: ctx.clock, ...ctx.services, queues: ctx.queues, schedulerIntervalMs: 1000 }).find((task) => task.name.startsWith('purge'))!;
  t.same(await purge.run(), { purged: 1 });
  const { rows } = await ctx.query('select key from idempotency_keys');
  t.same(rows.map((r: any) => r.key), ['new']);

  // In batches: 7 expired records, 3 at a time, all go; the fresh one stays.
  const { purgeOlderThan } = await import('../src/modules/idempotency/repo.js');
  await ctx.query(`insert into idempotency_keys (api_key_id, key, request_hash, method, path, state, created_at, locked_at)
    select 'key_x', 'k' || g, 'h', 'POST', '/v1/accounts', 'completed', $1::timestamptz, $1::timestamptz from generate_series(1, 7) g`, [new Date(ctx.clock.now().getTime() - 30 * 3600_000)]);
  t.equal(await purgeOlderThan(ctx.database.db, new Date(ctx.clock.now().getTime() - 24 * 3600_000), 3), 7);
  t.same((await ctx.query('select key from idempotency_keys')).rows.map((r: any) => r.key), ['new']);
});

t.test('the stored fingerprint is keyed (a body with a card token or VPA cannot be guessed offline); records of the plain form still replay', async (t) => {
  const { createFingerprinter, requestFingerprint } = await import('../src/modules/idempotency/domain.js');
  const { secretsKeysOf } = await import('../src/config.js');
  const ctx = await setup(t);
  const first = await ctx.call('POST', '/v1/accounts', { body, headers: { 'idempotency-key': 'fp-1' } });
  const { rows } = await ctx.query("select request_hash from idempotency_keys where key = 'fp-1'");
  const plain = requestFingerprint('POST', '/v1/accounts', body);
  t.not(rows[0].request_hash, plain, 'not a plain hash of the body');
  t.equal(rows[0].request_hash, createFingerprinter(secretsKeysOf(ctx.config))('POST', '/v1/accounts', body).stored, 'an HMAC under the SECRETS_KEYS-derived key');

  // A record written before (plain SHA-256) still replays within its 24 hours.
  await ctx.query("update idempotency_keys set request_hash = $1 where key = 'fp-1'", [plain]);
  const replay = await ctx.call('POST', '/v1/accounts', { body, headers: { 'idempotency-key': 'fp-1' } });
  t.equal(replay.status, 201);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.same(replay.body, first.body);
  const other = await ctx.call('POST', '/v1/accounts', { body: { ...body, name: 'Other' }, headers: { 'idempotency-key': 'fp-1' } });
  t.equal(other.status, 422, 'another body is still another request');
});
