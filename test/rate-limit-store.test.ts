import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { LeasedRedisStore } from '../src/plugins/rate-limit-store.js';
import { scanKeys } from './helper.js';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WINDOW = 60_000;

async function fixture(t: Test) {
  const prefix = `bt-rl-${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(redisUrl);
  t.teardown(async () => {
    const keys = await scanKeys(redis, `${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  const incr = (store: LeasedRedisStore, max: number, key = 'key') =>
    new Promise<number>((resolve, reject) => store.incr(key, (err, r) => (err ? reject(err) : resolve(r!.current)), WINDOW, max));
  /** The Redis key of the current window (windows are aligned to the clock). */
  const windowKey = (key = 'key') => `${prefix}${key}:${Math.floor(Date.now() / WINDOW)}`;
  return { prefix, redis, incr, windowKey };
}

/** Another "process": a store on a connection of its own. */
async function secondProcess(t: Test, prefix: string, opts = {}) {
  const redis = new Redis(redisUrl);
  t.teardown(() => redis.quit());
  return new LeasedRedisStore(redis, prefix, opts);
}

t.test('far below the limit most requests cost no Redis round trip, and every one is counted', async (t) => {
  const { prefix, redis, incr, windowKey } = await fixture(t);
  const store = new LeasedRedisStore(redis, prefix);
  let roundTrips = 0;
  const scripts = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const lease = scripts.rateLimitLease!.bind(redis);
  scripts.rateLimitLease = (...args) => (roundTrips++, lease(...args));
  const counts: number[] = [];
  // Requests arrive together, as they do on a busy api.
  for (let i = 0; i < 20; i++) counts.push(...(await Promise.all(Array.from({ length: 50 }, () => incr(store, 60_000)))));
  t.equal(counts.length, 1000);
  t.ok(counts.every((c) => c <= 60_000), 'every request allowed');
  t.ok(roundTrips < 100, `far fewer round trips than requests (${roundTrips})`);
  const leased = Number(await redis.get(windowKey()));
  t.ok(leased >= 1000, 'what was admitted was leased from the shared count first');
});

t.test('two processes together never admit more than the budget, and together admit all of it', async (t) => {
  const { prefix, redis, incr, windowKey } = await fixture(t);
  const a = new LeasedRedisStore(redis, prefix, { leaseMs: 50 });
  const b = await secondProcess(t, prefix, { leaseMs: 50 });
  const max = 600;
  let admitted = 0;
  let refusedRounds = 0;
  // Both keep sending, 40 at a time each, until both have been refused in two rounds
  // running (a lease the other held goes back within leaseMs, so a refusal can be early).
  while (refusedRounds < 2) {
    const round = await Promise.all([...Array.from({ length: 40 }, () => incr(a, max)), ...Array.from({ length: 40 }, () => incr(b, max))]);
    const allowed = round.filter((c) => c <= max).length;
    admitted += allowed;
    t.ok(admitted <= max, `never over the budget (${admitted} after this round)`);
    if (admitted > max) break;
    refusedRounds = allowed === 0 ? refusedRounds + 1 : 0;
    if (allowed === 0) await new Promise((r) => setTimeout(r, 60)); // past leaseMs: what was leased and not used is back
  }
  t.equal(admitted, max, 'exactly the budget was admitted, whichever process answered');
  t.ok(Number(await redis.get(windowKey())) <= max, 'the shared count never passed the budget');
});

t.test('a refusal comes back at the limit for every process', async (t) => {
  const { prefix, redis, incr } = await fixture(t);
  const a = new LeasedRedisStore(redis, prefix);
  const b = await secondProcess(t, prefix);
  const results = [];
  for (let i = 0; i < 12; i++) results.push(await incr(i % 2 ? a : b, 10));
  const allowed = results.filter((c) => c <= 10).length;
  t.ok(allowed <= 10, 'never more than the budget');
  t.ok(results.slice(-2).every((c) => c > 10), 'the last requests are refused');
});

t.test('without Redis it counts per process, says so, and shares the budget again when Redis is back', async (t) => {
  const { prefix, redis, incr } = await fixture(t);
  const events: boolean[] = [];
  const store = new LeasedRedisStore(redis, prefix, { retryMs: 50, onDegraded: (d) => events.push(d) });
  t.ok((await incr(store, 5)) <= 5, 'shared while Redis answers');
  // Redis "goes away": every script call fails, as on a fail-fast connection to a stopped server.
  const scripts = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const saved = { lease: scripts.rateLimitLease!, giveBack: scripts.rateLimitGiveBack! };
  const offline = () => Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
  scripts.rateLimitLease = offline;
  scripts.rateLimitGiveBack = offline;
  await new Promise((r) => setTimeout(r, 300)); // the lease of the first request has gone back (or failed to)
  const during: number[] = [];
  for (let i = 0; i < 7; i++) during.push(await incr(store, 5));
  t.same(events, [true], 'one degraded notice, not one per request');
  t.ok(store.health.degraded);
  t.equal(during.filter((c) => c <= 5).length, 5, 'the budget still holds, per process');
  scripts.rateLimitLease = saved.lease;
  scripts.rateLimitGiveBack = saved.giveBack;
  await new Promise((r) => setTimeout(r, 60)); // past retryMs: the next request asks Redis again
  const after = await incr(store, 1000, 'other');
  t.ok(after <= 1000);
  t.same(events, [true, false], 'recovery noticed');
  t.notOk(store.health.degraded);
});
