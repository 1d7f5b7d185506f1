import t from 'tap';
import { StartupError, checkRedisPolicy } from '../src/infra.js';
import { createLogger } from '../src/lib/logger.js';
import { setup } from './helper.js';

t.test('the queue board lists every queue for an ops key, and refuses anyone else', async (t) => {
  const ctx = await setup(t);
  const page = await ctx.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Bearer ${ctx.keys.ops}` } });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);
  const api = await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization: `Bearer ${ctx.keys.ops}` } });
  t.equal(api.statusCode, 200);
  const names = (api.json().queues as Array<{ name: string }>).map((q) => q.name).sort();
  t.same(names, Object.values(ctx.queues).map((q) => q.name).sort(), 'every queue of the service');
  t.equal((await ctx.app.inject({ method: 'GET', url: '/admin/queues' })).statusCode, 401);
  t.equal((await ctx.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization: `Bearer ${ctx.keys.write}` } })).statusCode, 403);
});

t.test('Redis must keep every key: refused in production, a warning elsewhere', async (t) => {
  const evicting = { config: async () => ['maxmemory-policy', 'allkeys-lru'] } as never;
  const keeping = { config: async () => ['maxmemory-policy', 'noeviction'] } as never;
  const logger = createLogger({ LOG_LEVEL: 'silent' });
  t.ok((await checkRedisPolicy(evicting, true, logger).catch((e) => e)) instanceof StartupError, 'a start-up error in production');
  await t.rejects(checkRedisPolicy(evicting, true, logger), /allkeys-lru; BullMQ needs noeviction/);
  t.equal(await checkRedisPolicy(evicting, false, logger), 'allkeys-lru', 'development only warns');
  t.equal(await checkRedisPolicy(keeping, true, logger), 'noeviction');
});

t.test('a key over its limit gets 429 with Retry-After, also spread over two api processes', async (t) => {
  const { buildApp } = await import('../src/app.js');
  const ctx = await setup(t, { RATE_LIMIT_PER_MINUTE: '5', RATE_LIMIT_HOT_PER_MINUTE: '50' });
  // A second api process: another app on the same Postgres and Redis.
  const other = await buildApp({ config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, clock: ctx.clock });
  t.teardown(() => other.close());
  const key = await ctx.key(['read']);
  const get = (app: typeof other, k = key) => app.inject({ method: 'GET', url: '/v1/billing-cycles', headers: { authorization: `Bearer ${k}` } });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await get(ctx.app)).statusCode, (await get(other)).statusCode);
  t.same(statuses, [200, 200, 200, 200, 200, 429], 'five a minute, whichever process answers');
  const refused = await get(other);
  t.equal(refused.statusCode, 429);
  t.equal(refused.json().code, 'rate_limited');
  t.match(refused.headers['content-type'], /application\/problem\+json/);
  t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After');
  t.ok(refused.headers['ratelimit-limit'] !== undefined && refused.headers['ratelimit-remaining'] !== undefined, 'RateLimit-* headers');
  t.equal((await get(ctx.app, ctx.keys.ops)).statusCode, 200, 'another key has its own budget');
  const hot = await ctx.app.inject({
    method: 'POST',
    url: '/v1/usage',
    headers: { authorization: `Bearer ${await ctx.key(['write'])}` },
    payload: { events: [{ id: 'x', accountId: 'acc_00000000000000000000000000', type: 'sms', segments: 1 }] },
  });
  t.equal(hot.headers['ratelimit-limit'], '50', 'the hot paths have their own, higher limit');
  t.equal((await ctx.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'health is not limited');
});
