import { once } from 'node:events';
import t from 'tap';
import { paidAccount, readyAccount, setup } from './helper.js';

const call = { action: 'outbound_call', destination: '+14155550123' };

/** Milliseconds one call takes. */
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

t.test('without Redis the api answers authorize, usage, reads and an upgrade at once; rate limits fall back to each process', async (t) => {
  const ctx = await setup(t, { RATE_LIMIT_PER_MINUTE: '5' });
  const account = await paidAccount(ctx, 100000);
  const trial = await readyAccount(ctx, { country: 'IN' });
  const hot = await ctx.key(['read', 'write']);

  // Redis goes away (the client stops: every command fails, as while the server is down).
  const ended = once(ctx.redis, 'end');
  ctx.redis.disconnect();
  await ended;

  const [authorized, authorizeMs] = await timed(() => ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: hot, body: call }));
  t.equal(authorized.status, 200);
  t.equal(authorized.body.allowed, true);
  t.ok(authorizeMs < 1000, `authorize answered in ${authorizeMs.toFixed(0)} ms`);

  const [used, usageMs] = await timed(() =>
    ctx.call('POST', '/v1/usage', { key: hot, body: { events: [{ id: 'no-redis-1', accountId: account.id, type: 'voice_call', durationSeconds: 61 }] } }),
  );
  t.equal(used.status, 200);
  t.equal(used.body.results[0].status, 'debited');
  t.ok(usageMs < 1000, `usage answered in ${usageMs.toFixed(0)} ms`);

  // Once the fallback is on, the hot path never waits for Redis at all.
  const later: number[] = [];
  for (let i = 0; i < 20; i++) later.push((await timed(() => ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: hot, body: call })))[1]);
  t.ok(Math.max(...later) < 200, `the next 20 authorizations took at most ${Math.max(...later).toFixed(0)} ms`);

  const upgrade = await ctx.call('POST', `/v1/accounts/${trial.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'up-no-redis' },
  });
  t.equal(upgrade.status, 201, 'an upgrade needs only Postgres: its email waits in the outbox');

  // The budget (5 a minute here) still holds, counted by this process alone.
  const reader = await ctx.key(['read']);
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await ctx.call('GET', '/v1/plans', { key: reader })).status);
  t.same(statuses, [200, 200, 200, 200, 200, 429, 429], 'per-process limits while Redis is away');

  const board = await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization: `Bearer ${ctx.keys.ops}` } });
  t.equal(board.statusCode, 503, 'the queue board says Redis is away');
  t.match(board.headers['content-type'], /^application\/problem\+json/);
  t.equal(board.json().code, 'service_unavailable');

  const metrics = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } });
  t.equal(metrics.statusCode, 200, '/metrics answers without Redis');
  t.match(metrics.body, /^billing_rate_limit_degraded 1$/m);
  t.match(metrics.body, /^billing_redis_up 0$/m);

  // Redis is back: shared limits again within a retry interval, without a restart.
  await ctx.redis.connect();
  const fresh = await ctx.key(['read']);
  const deadline = Date.now() + 10_000;
  let after = '';
  do {
    await ctx.call('GET', '/v1/plans', { key: fresh }); // a request asks Redis again once the retry interval is over
    after = (await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } })).body;
    if (/^billing_rate_limit_degraded 0$/m.test(after)) break;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < deadline);
  t.match(after, /^billing_rate_limit_degraded 0$/m, 'shared again');
  t.match(after, /^billing_redis_up 1$/m);
  t.equal((await ctx.call('GET', '/v1/plans', { key: await ctx.key(['read']) })).status, 200);
});
