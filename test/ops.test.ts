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
