import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { CoalescingRedisStore } from '../src/plugins/rate-limit-store.js';
import { scanKeys } from './helper.js';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function fixture(t: Test) {
  const prefix = `bt-rl-${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(redisUrl);
  t.teardown(async () => {
    const keys = await scanKeys(redis, `${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  const incr = (store: CoalescingRedisStore, max: number) =>
    new Promise<number>((resolve, reject) => store.incr('key', (err, r) => (err ? reject(err) : resolve(r!.current)), 60_000, max));
  return { prefix, redis, incr };
}

t.test('far below the limit: counted here, added to Redis in one go', async (t) => {
  const { prefix, redis, incr } = await fixture(t);
  const store = new CoalescingRedisStore(redis, prefix, 50);
  const counts = [];
  for (let i = 0; i < 1000; i++) counts.push(await incr(store, 60_000));
  t.same(counts.slice(0, 3), [1, 2, 3]);
  t.equal(counts.at(-1), 1000, 'every request counted');
  t.ok(Number(await redis.get(`${prefix}key`)) < 1000, 'not one Redis round trip per request');
  await new Promise((r) => setTimeout(r, 120));
  t.equal(Number(await redis.get(`${prefix}key`)), 1000, 'flushed to Redis');
  t.ok((await redis.pttl(`${prefix}key`)) > 0, 'the window expires');
});

t.test('near the limit it is exact, across two processes', async (t) => {
  const { prefix, redis, incr } = await fixture(t);
  const redis2 = new Redis(redisUrl);
  t.teardown(() => redis2.quit());
  const a = new CoalescingRedisStore(redis, prefix, 20);
  const b = new CoalescingRedisStore(redis2, prefix, 20);
  const max = 300; // margin 100: from 200 on, every request is counted in Redis
  const counts: number[] = [];
  for (let i = 0; i < 200; i++) counts.push(await incr(i % 2 ? a : b, max));
  // Each store counted some requests locally; both have flushed, and neither trusts its old view of the other.
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 200; i++) counts.push(await incr(i % 2 ? a : b, max));
  t.equal(Number(await redis.get(`${prefix}key`)), 400, 'every request reached Redis');
  const allowed = counts.slice(200).filter((c) => c <= max).length;
  t.equal(allowed, max - 200, 'exactly the budget left was allowed, whichever process answered');
});
