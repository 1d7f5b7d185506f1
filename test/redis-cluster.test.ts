/**
 * The service on a Redis Cluster (REDIS_URL=redis+cluster://...): three masters from the
 * machine's redis-server on loopback, the app and a worker set in this process, an SMTP
 * server and a webhook receiver. An upgrade (its confirmation email and its webhook), a
 * renewal on a test clock and the rate limiter all go through the cluster's queues and keys;
 * a plain connection to a cluster fails them with MOVED. Then one master dies: readiness
 * reports the cluster's failed state. Last, with a replica per master and the service in
 * processes of its own, the master holding the service's keys dies mid-run.
 */
import { once } from 'node:events';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import t from 'tap';
import { connectRedis, StartupError } from '../src/infra.js';
import { closeQueues, createQueues } from '../src/jobs/registry.js';
import { createLogger } from '../src/lib/logger.js';
import { withHashTag } from '../src/lib/redis.js';
import { createSmtpMailer } from '../src/modules/notifications/mailer.js';
import { startWorkers } from '../src/workers.js';
import { describeAnswer, emailLedger, freePort, readyIndianAccount, startCluster, startRedisCluster, STARTER_MONTHLY, until, webhookReceiver, type ClusterRedis } from './fault-harness.js';
import { approveKyc, scanKeys, setup } from './helper.js';
import { entryArgv, root } from './processes.js';
import { smtpReceiver } from './smtp.js';

// Four scenarios, each waiting up to 40 s for work after a fault on a busy machine: 90 s for the
// file cut a loaded run's failover scenario off while its webhooks were still on their way.
t.setTimeout(240_000);

const START = '2026-03-10T08:00:00Z';
const AFTER_PERIOD_END = '2026-04-10T08:05:00Z';

t.test('a cluster that does not answer: one line at start, or a start without it', async (t) => {
  const url = `redis+cluster://127.0.0.1:${await freePort()},127.0.0.1:${await freePort()}`;
  await t.rejects(connectRedis(url), new StartupError(`Redis Cluster does not answer at ${url}: start one (e.g. \`redis-server\`) or set REDIS_URL to a reachable Redis`));
  const warnings: string[] = [];
  const logger = Object.assign(createLogger({ LOG_LEVEL: 'silent' }), { warn: (m: string) => warnings.push(m) });
  const redis = await connectRedis(url, { orStartWithout: logger });
  t.not(redis.status, 'ready', 'a client that keeps trying');
  t.match(warnings, [/Redis Cluster does not answer .*Starting without it/]);
  redis.disconnect();
});

t.test('the service on a 3-master Redis Cluster', async (t) => {
  const started = Date.now();
  const redisCluster = await startRedisCluster(t, { masters: 3 });
  t.comment(`cluster up in ${Date.now() - started} ms`);
  const smtp = await smtpReceiver(t);
  const hooks = await webhookReceiver(t);
  const ctx = await setup(t, {
    REDIS_URL: redisCluster.url,
    TEST_CLOCKS_ENABLED: 'true',
    SCHEDULER_INTERVAL_MS: '50',
    OUTBOX_POLL_MS: '50',
    PRE_DEBIT_NOTICE_HOURS: '0',
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_RETRY_SCALE: '0.001',
  });
  const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  const workers = await startWorkers(
    { config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock },
    { mailer },
  );
  let workersClosed: Promise<void> | undefined;
  const closeWorkers = () => (workersClosed ??= workers.close());
  t.teardown(closeWorkers);
  const prefix = ctx.config.QUEUE_PREFIX;

  await t.test('REDIS_URL redis+cluster:// connects a Cluster, and the queue prefix is a hash tag', async (t) => {
    t.ok(ctx.redis instanceof Cluster, 'an ioredis Cluster');
    t.match(prefix, /^\{[^}]+\}$/, `QUEUE_PREFIX wrapped in braces: ${prefix}`);
    const ready = await ctx.call('GET', '/readyz', { key: null });
    t.same([ready.status, ready.body.status, ready.body.checks.redis], [200, 'ready', 'ok'], '/readyz: ready, Redis ok');
  });

  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'cluster', frozenTime: START } })).body;
  const email = `owner-${Date.now()}@cluster.example`;
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Cluster Telecom', email, country: 'IN', testClockId: clock.id } })).body;
  let subscriptionId = '';

  await t.test('an upgrade: 201, its confirmation email, and its webhook delivered', async (t) => {
    const endpoint = await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: hooks.urlFor('acct'), eventTypes: ['account.upgraded'] } });
    t.equal(endpoint.status, 201, 'webhook endpoint');
    await approveKyc(ctx, account.id);
    const upgrade = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
      body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' } },
      headers: { 'idempotency-key': `up-${account.id}` },
    });
    t.equal(upgrade.status, 201, `upgrade answered ${upgrade.status}`);
    subscriptionId = upgrade.body.subscription.id;
    await until(() => smtp.received.some((m) => m.to.includes(email) && m.raw.includes('Welcome to')), 'the upgrade confirmation email', 20_000, 50);
    t.pass('the confirmation email was sent by a worker on the cluster');
    await until(() => hooks.received.some((h) => h.type === 'account.upgraded'), 'the account.upgraded webhook', 20_000, 50);
    const delivery = await until(
      async () => (await ctx.query("select status from webhook_deliveries where endpoint_id = $1 and status = 'succeeded'", [endpoint.body.id])).rows[0],
      'the delivery recorded as succeeded',
      10_000,
      50,
    );
    t.equal(delivery.status, 'succeeded', 'account.upgraded reached the receiver and was recorded');
  });

  await t.test('a renewal on a test clock: the renewal invoice paid, its email sent', async (t) => {
    const advanced = await ctx.call('POST', `/v1/test-clocks/${clock.id}/advance`, { body: { frozenTime: AFTER_PERIOD_END } });
    t.same([advanced.status, advanced.body.status], [200, 'ready'], 'the clock advanced: every renewal done');
    const invoices = await ctx.query("select status from invoices where subscription_id = $1 and kind = 'renewal'", [subscriptionId]);
    t.same(invoices.rows, [{ status: 'paid' }], 'one renewal invoice, paid');
    await until(() => smtp.received.some((m) => m.to.includes(email) && m.raw.includes('Your subscription renewed')), 'the renewal email', 20_000, 50);
    t.pass('the renewal email was sent');
  });

  await t.test('the ops CLI relays the outbox through the cluster', async (t) => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [...entryArgv('src/cli/ops.ts'), 'outbox:requeue', '--since', '2000-01-01T00:00:00Z', '--json'], {
      cwd: root,
      env: { ...process.env, REDIS_URL: redisCluster.url, DATABASE_URL: ctx.config.DATABASE_URL, QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
    });
    t.equal(r.status, 0, `ops outbox:requeue exited ${r.status}: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    t.ok(out.reset > 0 && out.relayed >= out.reset, `every row relayed again: ${r.stdout.trim()}`);
  });

  await t.test('every key of the service sits in one hash slot; rate limits and job statistics are counted there', async (t) => {
    const keys = await scanKeys(ctx.redis, `${prefix}:*`);
    t.ok(keys.some((k) => k.includes(':rate-limit:')), 'rate limit windows kept in the cluster');
    t.ok(keys.some((k) => k.endsWith(':metrics:jobs')), 'job statistics kept in the cluster');
    t.ok(keys.some((k) => k.includes(':events:')), 'event queue keys');
    const slots = new Set(await Promise.all(keys.map((k) => (ctx.redis as Cluster).cluster('KEYSLOT', k))));
    t.equal(slots.size, 1, `${keys.length} keys, one slot`);
    const metrics = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } });
    t.match(metrics.body, /^billing_redis_up 1$/m, 'billing_redis_up 1');
    t.match(metrics.body, /^bullmq_jobs_completed_total\{queue="events"\} [1-9]/m, 'job statistics read back from the cluster');
  });

  await t.test('a master dies: /readyz reports Redis failed (degraded) until it is back; the api still answers', async (t) => {
    // A master that does not hold the service's hash slot: nothing of ours is lost with it,
    // yet without a replica the whole cluster refuses commands (cluster_state:fail).
    const slot = Number(await (ctx.redis as Cluster).cluster('KEYSLOT', `${prefix}:x`));
    const layout = await (ctx.redis as Cluster).cluster('SLOTS');
    const owner = layout.find(([from, to]) => slot >= from && slot <= to)![2]![1];
    const victim = redisCluster.nodes.find((n) => n.port !== owner)!;
    // The workers are closed first: BullMQ workers that lived through a CLUSTERDOWN outage do
    // not always finish closing afterwards under load (src/workers.ts bounds that close; the
    // test process would still not exit). New work after the outage is checked by the api alone.
    await closeWorkers();
    await victim.stop();
    const degraded = await until(
      async () => {
        const res = await ctx.call('GET', '/readyz', { key: null });
        return res.body.status === 'degraded' ? res : null;
      },
      '/readyz to report degraded',
      20_000,
      100,
    );
    t.same([degraded.status, degraded.body.checks.redis, degraded.body.checks.postgres], [200, 'failed', 'ok'], 'degraded: Redis failed, Postgres ok');
    const info = String(await redisCluster.nodes.find((n) => n.port === owner)!.client().cluster('INFO'));
    t.match(info, /cluster_state:fail/, 'the surviving masters say cluster_state:fail');
    t.equal((await ctx.call('GET', `/v1/accounts/${account.id}`)).status, 200, 'a read answers from Postgres meanwhile');

    await victim.start();
    await until(async () => (await ctx.call('GET', '/readyz', { key: null })).body.status === 'ready', '/readyz ready again once the master is back', 30_000, 100);
    t.pass('ready again once the master rejoined');
  });
  t.comment(`scenario took ${Date.now() - started} ms`);
});

t.test('a worker process started while no node of the cluster answers starts its workers once the cluster does', async (t) => {
  const redisCluster = await startRedisCluster(t, { masters: 3 });
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, { REDIS_URL: redisCluster.url, SCHEDULER_INTERVAL_MS: '50', OUTBOX_POLL_MS: '50' });
  const logger = createLogger({ LOG_LEVEL: 'silent' });
  for (const node of redisCluster.nodes) await node.stop();
  const redis = await connectRedis(redisCluster.url, { orStartWithout: logger });
  const queues = createQueues(redis, ctx.config.QUEUE_PREFIX);
  t.teardown(async () => {
    await closeQueues(queues);
    redis.disconnect();
  });
  const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  const starting = startWorkers({ config: ctx.config, logger, database: ctx.database, redis, queues, clock: ctx.clock }, { mailer });
  // The event loop keeps turning while the cluster is away (BullMQ on a dead cluster once spun without yielding).
  for (let i = 0; i < 5; i++) {
    const before = Date.now();
    await new Promise((r) => setTimeout(r, 100));
    t.ok(Date.now() - before < 1000, `a 100 ms timer fired after ${Date.now() - before} ms`);
  }
  for (const node of redisCluster.nodes) await node.start();
  const workers = await starting;
  t.teardown(() => workers.close());
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Late Start', email: 'late@cluster.example', country: 'IN' } })).body;
  await approveKyc(ctx, account.id);
  await until(() => smtp.received.some((m) => m.to.includes('late@cluster.example')), 'the KYC email from the workers started late', 30_000, 50);
  t.pass('the workers started once the cluster answered, and sent the email');
});

/**
 * The service's processes on the cluster (the api and a worker, `node dist/...`, as operators
 * run them), so that what the failover does to their Redis clients stays in them: the test
 * kills them at its end, and asks the worker to stop (SIGTERM) after the failover to show its
 * shutdown is bounded. BullMQ (6.7) workers that lived through a failover sometimes never
 * finish closing; in-process they kept the test process from exiting.
 */
t.test("3 masters with a replica each: the master holding the service's keys dies mid-run, every email and webhook still goes out once, and the worker still stops on SIGTERM", async (t) => {
  const redisCluster = await startRedisCluster(t, { masters: 3, replicas: 1 });
  const hooks = await webhookReceiver(t);
  // What the harness asks of its Redis, through a cluster client: BullMQ's worker count and job counts.
  const probe = new Cluster([{ host: '127.0.0.1', port: redisCluster.nodes[0]!.port }], { redisOptions: { maxRetriesPerRequest: 1 } });
  probe.on('error', () => {});
  t.teardown(() => probe.disconnect());
  const onCluster = (prefix: string) => withHashTag(prefix);
  const redis: ClusterRedis = {
    url: redisCluster.url,
    workerCount: async (prefix: string, queue: string) => {
      const q = new Queue(queue, { connection: probe, prefix: onCluster(prefix) });
      try {
        return await q.getWorkersCount();
      } finally {
        await q.close();
      }
    },
  };
  const cluster = await startCluster(t, { apis: 1, workers: 1, redis, env: { OUTBOX_POLL_MS: '50', SCHEDULER_INTERVAL_MS: '50', WEBHOOK_RETRY_SCALE: '0.001', WORKER_STUCK_MS: '3000' } });
  t.teardown(() => t.comment(`log summary:\n${cluster.logSummary()}`));
  const api = cluster.api(0);
  const worker = cluster.workers[0]!;

  // The service's client times commands out after 2 s; on a busy machine a fresh cluster can be slower: ask again.
  const ask = <T>(what: string, fn: () => Promise<T>) => until(() => fn().catch(() => undefined), what, 20_000, 200);
  const slot = Number(await ask('KEYSLOT', () => probe.cluster('KEYSLOT', `${onCluster(cluster.prefix)}:x`)));
  const owner = (await ask('CLUSTER SLOTS', () => probe.cluster('SLOTS'))).find(([from, to]) => slot >= from && slot <= to)![2]![1];

  const ACCOUNTS = 12;
  const accounts = await Promise.all(
    Array.from({ length: ACCOUNTS }, async (_, i) => {
      const account = await readyIndianAccount(api, { tag: `failover${i}` });
      const endpoint = await api.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: hooks.urlFor(`f${i}`), eventTypes: ['account.upgraded'] } });
      if (endpoint.status !== 201) throw new Error(`webhook endpoint: ${describeAnswer(endpoint)}`);
      return { ...account, endpointId: endpoint.body.id as string };
    }),
  );
  await until(async () => (await emailLedger(cluster)).events.every((e) => e.sent === 1), 'the KYC emails, before the upgrades', 40_000);
  const before = (await cluster.sql<{ id: number }>('select coalesce(max(id), 0)::int as id from outbox'))[0]!.id;

  // The upgrades, and the master that holds the queues killed while their events are on their way.
  const upgrades = accounts.map((a) => api.call('POST', `/v1/accounts/${a.id}/upgrade`, { body: STARTER_MONTHLY(), headers: { 'idempotency-key': `up-${a.id}` }, timeoutMs: 30_000 }));
  await until(async () => (await cluster.sql<{ n: number }>("select count(*)::int as n from outbox where type = 'account.upgraded' and relayed_at is not null"))[0]!.n > 0, 'an upgrade event relayed', 20_000, 10);
  await redisCluster.nodes.find((n) => n.port === owner)!.stop();
  const killedAt = Date.now();
  t.same((await Promise.all(upgrades)).map((u) => u.status), accounts.map(() => 201), 'every upgrade answered 201 (Postgres alone)');

  await until(async () => (await api.call('GET', '/readyz')).body?.status === 'ready', 'a replica to take over (/readyz ready)', 30_000, 100);
  t.comment(`a replica took over ${Date.now() - killedAt} ms after the kill`);

  // Every email the upgrades owe (confirmation with its tax invoice), exactly once.
  let ledger = await emailLedger(cluster, before);
  const upgraded = () => ledger.events.filter((e) => e.type === 'account.upgraded');
  await until(async () => (ledger = await emailLedger(cluster, before)).events.every((e) => e.sent >= 1 && e.files >= 1) && upgraded().length === ACCOUNTS, 'every email the upgrades owe', 40_000, 100).catch(
    (err: Error) => t.fail(err.message),
  );
  t.equal(upgraded().length, ACCOUNTS, 'one account.upgraded event per upgrade');
  t.same(ledger.events.filter((e) => e.sent !== 1 || e.files !== 1 || e.deliveries !== 1).slice(0, 10), [], `every email owed sent exactly once (${ledger.events.length} emails)`);
  t.same(ledger.stray.slice(0, 10), [], 'no email that no delivery row accounts for');

  const delivered = async () =>
    (await cluster.sql<{ n: number }>("select count(*)::int as n from webhook_deliveries where status = 'succeeded' and endpoint_id = any($1)", [accounts.map((a) => a.endpointId)]))[0]!.n;
  await until(async () => (await delivered()) === ACCOUNTS, 'every account.upgraded webhook delivered', 40_000, 100).catch((err: Error) => t.fail(err.message));
  t.equal(await delivered(), ACCOUNTS, 'one succeeded delivery per upgrade');
  const received = hooks.received.filter((h) => h.type === 'account.upgraded');
  t.equal(new Set(received.map((h) => h.webhookId)).size, ACCOUNTS, `the receiver got every account.upgraded webhook (${received.length} requests)`);
  t.comment(`everything out ${Date.now() - killedAt} ms after the kill; queue workers replaced by their supervisor: ${(worker.output().match(/took no job/g) ?? []).length}`);

  for (const p of cluster.all) t.ok(p.alive(), `${p.name} is still running${p.alive() ? '' : ` (${p.ended()})`}`);
  t.same(cluster.fatalLines().slice(0, 20), [], 'no process logged an uncaught error or is exiting');

  // Stopping after the failover: SIGTERM ends the worker within its 15 s grace (its workers'
  // close is bounded at 10 s, then their connections are cut).
  const stopStarted = Date.now();
  const exited = once(worker.child, 'exit');
  worker.child.kill('SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(r, 20_000, false).unref())]);
  t.ok(stopped, `the worker exited on SIGTERM (${worker.ended() ?? 'still running'} after ${Date.now() - stopStarted} ms)`);
});
