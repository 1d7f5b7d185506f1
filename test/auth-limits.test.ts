import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import t, { type Test } from 'tap';
import { setup, type TestContext } from './helper.js';

const randomKey = () => `bsk_${randomBytes(32).toString('base64url')}`;

/**
 * Counts the api_keys queries the app sends from now on: the app queries through the pool
 * the test gave it (ctx.database), so wrapping that pool's query sees every key lookup.
 */
function countKeyLookups(t: Test, ctx: TestContext): () => number {
  const pool = (ctx.database.db as unknown as { $client: pg.Pool }).$client;
  const original = pool.query;
  let lookups = 0;
  pool.query = function (this: pg.Pool, ...args: unknown[]) {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
    if (text?.includes('"api_keys"')) lookups++;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pool.query;
  t.teardown(() => {
    pool.query = original;
  });
  return () => lookups;
}

t.test('past its failure budget an address gets 429 before any key lookup; a known key keeps working', async (t) => {
  const ctx = await setup(t, { AUTH_FAILURES_PER_MINUTE: '5' });
  t.equal((await ctx.call('GET', '/v1/plans', { key: ctx.keys.read })).status, 200, 'a valid key, now known to this process');
  const lookups = countKeyLookups(t, ctx);

  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await ctx.call('GET', '/v1/plans', { key: randomKey() });
    statuses.push(res.status);
    if (res.status === 429) {
      t.match(res.headers['content-type'], /^application\/problem\+json/);
      t.equal(res.body.code, 'rate_limited');
      const retryAfter = Number(res.headers['retry-after']);
      t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${res.headers['retry-after']}`);
    }
  }
  t.same(statuses, [...Array(5).fill(401), ...Array(15).fill(429)], 'five 401s, then 429s');
  t.equal(lookups(), 5, 'only the five 401s looked their key up; the 429s cost no query');

  t.equal((await ctx.call('GET', '/v1/plans', { key: ctx.keys.read })).status, 200, 'the known key still answers 200 from the same address');
  t.equal((await ctx.call('GET', '/v1/plans', { key: null })).status, 429, 'no key at all: 429 too');
  const unseen = await ctx.key(['read']);
  t.equal((await ctx.call('GET', '/v1/plans', { key: unseen })).status, 429, 'a valid key this process has not seen waits like any other');
  t.equal(lookups(), 5, 'still no lookup');

  const elsewhere = await ctx.app.inject({ method: 'GET', url: '/v1/plans', remoteAddress: '198.51.100.7', headers: { authorization: `Bearer ${randomKey()}` } });
  t.equal(elsewhere.statusCode, 401, 'another address has a budget of its own');
  const unseenElsewhere = await ctx.app.inject({ method: 'GET', url: '/v1/plans', remoteAddress: '198.51.100.7', headers: { authorization: `Bearer ${unseen}` } });
  t.equal(unseenElsewhere.statusCode, 200);

  ctx.clock.advance(60_000);
  const before = lookups();
  t.equal((await ctx.call('GET', '/v1/plans', { key: randomKey() })).status, 401, 'the next minute starts a fresh budget');
  t.equal(lookups(), before + 1, 'and looks keys up again');
});

t.test('the client address comes from X-Forwarded-For only with TRUST_PROXY', async (t) => {
  const flood = async (ctx: TestContext, forwardedFor: string) => {
    const res = await ctx.app.inject({ method: 'GET', url: '/v1/plans', headers: { authorization: `Bearer ${randomKey()}`, 'x-forwarded-for': forwardedFor } });
    return res.statusCode;
  };
  t.test('behind a proxy: one budget per forwarded address', async (t) => {
    const ctx = await setup(t, { AUTH_FAILURES_PER_MINUTE: '1', TRUST_PROXY: 'true' });
    t.same([await flood(ctx, '203.0.113.7'), await flood(ctx, '203.0.113.7'), await flood(ctx, '203.0.113.8')], [401, 429, 401]);
  });
  t.test('by default: the header is ignored, the peer address counts', async (t) => {
    const ctx = await setup(t, { AUTH_FAILURES_PER_MINUTE: '1' });
    t.same([await flood(ctx, '203.0.113.7'), await flood(ctx, '203.0.113.8')], [401, 429]);
  });
});
