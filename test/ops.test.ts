import t from 'tap';
import { entryArgv } from './processes.js';
import { StartupError, checkRedisPolicy } from '../src/infra.js';
import { createLogger } from '../src/lib/logger.js';
import { approveKyc, setup } from './helper.js';

// The CLI test runs a dozen processes, each compiling its TypeScript: slow on a busy machine.
t.setTimeout(240_000);

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

t.test('/metrics exposes HTTP, queue, job, outbox, renewal, recharge and webhook figures', async (t) => {
  const { startWorkers } = await import('../src/workers.js');
  const ctx = await setup(t, { OUTBOX_POLL_MS: '50', SCHEDULER_INTERVAL_MS: '50' });
  const workers = await startWorkers(
    { config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock },
    { mailer: { send: async () => {}, close: () => {} } },
  );
  t.teardown(() => workers.close());
  await ctx.call('GET', '/v1/plans');
  await ctx.call('GET', '/v1/plans/plan_nope_v1');
  const created = await ctx.call('POST', '/v1/accounts', { body: { name: 'M', email: 'm@example.com', country: 'IN' } });
  await approveKyc(ctx, created.body.id); // the approval emails: a job on the events queue
  const read = async () => (await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } })).body;
  const deadline = Date.now() + 10_000;
  let text = await read();
  while (!/bullmq_jobs_completed_total\{queue="events"\} [1-9]/.test(text) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    text = await read();
  }
  t.match(text, /http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/v1\/plans",status_code="200"\}/, 'latency by route and status');
  t.match(text, /http_request_duration_seconds_count\{method="GET",route="\/v1\/plans\/:planId",status_code="404"\} 1/, 'request rate (count)');
  t.match(text, /http_request_errors_total\{method="GET",route="\/v1\/plans\/:planId",status_code="404"\} 1/, 'errors by route and status');
  for (const queue of Object.values(ctx.queues)) t.match(text, new RegExp(`bullmq_queue_jobs\\{queue="${queue.name}",state="waiting"\\}`), `depth of ${queue.name}`);
  t.match(text, /bullmq_jobs_completed_total\{queue="events"\} [1-9]/, 'jobs completed by queue');
  t.match(text, /bullmq_job_duration_seconds_total\{queue="events"\}/, 'job duration');
  t.match(text, /billing_outbox_lag_seconds \d/, 'outbox lag');
  t.match(text, /billing_renewals_overdue 0/, 'due but unrenewed subscriptions');
  t.match(text, /billing_recharge_failures_last_hour 0/, 'recharge failures');
  t.match(text, /# TYPE billing_webhook_attempt_failures_last_hour gauge/, 'webhook failures by class');
  t.match(text, /process_cpu_user_seconds_total/, 'Node process metrics');
});

t.test('each ops action and change of money or plan leaves an audit event: who, what, when, request id', async (t) => {
  const { readyAccount } = await import('./helper.js');
  const ctx = await setup(t);
  const a = await readyAccount(ctx);
  const headers = (k: string) => ({ 'idempotency-key': k, 'x-request-id': `req-${k}` });
  await ctx.call('POST', '/v1/plans/custom', { body: { accountId: a.id, name: 'Audit Co', prices: [{ currency: 'INR', monthlyMinimum: 1, minInitialCredits: 1, perPulseRate: 1, perSmsRate: 1, whatsappAddonMonthly: null }] } });
  const up = await ctx.call('POST', `/v1/accounts/${a.id}/upgrade`, {
    body: { planId: 'plan_growth_v1', billingCycle: 'monthly', initialCredits: 500000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: headers('up'),
  });
  const sub = up.body.subscription.id;
  await ctx.call('POST', `/v1/subscriptions/${sub}/plan-change`, { body: { planId: 'plan_starter_v1' } });
  await ctx.call('DELETE', `/v1/subscriptions/${sub}/scheduled-change`);
  await ctx.call('POST', `/v1/subscriptions/${sub}/billing-cycle`, { body: { billingCycle: 'annual' } });
  await ctx.call('POST', `/v1/subscriptions/${sub}/cancel`);
  await ctx.call('POST', `/v1/subscriptions/${sub}/resume`);
  await ctx.call('POST', `/v1/accounts/${a.id}/credits/adjustments`, { body: { amount: 10, reason: 'audit test' }, headers: headers('adj') });
  await ctx.call('POST', `/v1/accounts/${a.id}/credits/purchases`, { body: { amount: 1000 }, headers: headers('buy') });
  await ctx.call('PUT', `/v1/accounts/${a.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 100, amount: 1000 } });
  const wire = await readyAccount(ctx, { country: 'US' });
  const pending = await ctx.call('POST', `/v1/accounts/${wire.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'wire_transfer' } },
    headers: headers('wire'),
  });
  await ctx.call('POST', `/v1/payments/${pending.body.payment.id}/confirm`, { body: { reference: 'UTR-A' } });
  const key = await ctx.services.auth.createApiKey({ name: 'audited', scopes: ['read'], accountId: a.id, actor: 'cli' });

  const log = await ctx.call('GET', `/v1/audit-events?accountId=${a.id}&limit=200`);
  t.equal(log.status, 200);
  const actions = log.body.data.map((e: any) => e.action);
  for (const action of [
    'kyc.set',
    'plan.custom_create',
    'account.upgrade',
    'subscription.plan_change',
    'subscription.plan_change_withdraw',
    'subscription.billing_cycle',
    'subscription.cancel',
    'subscription.resume',
    'credits.adjust',
    'credits.purchase',
    'credits.auto_recharge',
    'api_key.create',
  ]) {
    t.ok(actions.includes(action), `${action} audited`);
  }
  const upgrade = log.body.data.find((e: any) => e.action === 'account.upgrade');
  t.equal(upgrade.requestId, 'req-up', 'the request id');
  t.match(upgrade.actorKeyId, /^key_/, 'who');
  t.ok(upgrade.at, 'when');
  t.equal(upgrade.details.body.paymentMethod.token, '[redacted]', 'no payment token in the audit log');
  t.equal(log.body.data.find((e: any) => e.action === 'api_key.create' && e.target === key.id).actorKeyId, 'cli');
  const confirm = await ctx.call('GET', `/v1/audit-events?accountId=${wire.id}`);
  t.ok(confirm.body.data.some((e: any) => e.action === 'payment.confirm'), 'payment confirmation audited');
  t.equal((await ctx.call('GET', '/v1/audit-events', { key: ctx.keys.write })).status, 403, 'ops only');
  await t.rejects(ctx.query('delete from audit_events'), /append-only/, 'the audit log cannot be edited');
});

t.test('the ops CLI: keys, payments, credits, ledger check, outbox, account state; exit codes and --json', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { readyAccount } = await import('./helper.js');
  const ctx = await setup(t);
  const root = new URL('..', import.meta.url).pathname;
  const ops = (...args: string[]) => {
    const r = spawnSync(process.execPath, [...entryArgv('src/cli/ops.ts'), ...args], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: ctx.config.DATABASE_URL, QUEUE_PREFIX: ctx.config.QUEUE_PREFIX, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const account = await readyAccount(ctx);
  await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'cli' },
  });

  const created = ops('keys:create', '--scopes', 'read', '--json');
  t.equal(created.code, 0);
  const key = JSON.parse(created.out); // the JSON alone: a second line would not parse
  t.match(key.key, /^bsk_/);
  t.equal(created.err, '', 'and nothing else, not even on stderr');
  t.equal((await ctx.call('GET', '/v1/plans', { key: key.key })).status, 200);
  t.equal(ops('keys:revoke', key.id).code, 0);
  // Revoked by another process: the api hears it through the change feed (spawnSync held its event loop).
  await ctx.app.changes.sync();
  t.equal((await ctx.call('GET', '/v1/plans', { key: key.key })).status, 401, 'a revoked key stops working');
  t.equal(ops('keys:revoke', 'key_nope').code, 3, 'not found: 3');

  const adjusted = ops('credits:adjust', account.id, '--amount', '2500', '--reason', 'cli goodwill', '--json');
  t.equal(adjusted.code, 0);
  t.equal(JSON.parse(adjusted.out).balance, 102500);
  t.equal(ops('credits:adjust', account.id, '--amount', '-999999999', '--reason', 'too much').code, 1, 'refused: 1');
  t.equal(ops('credits:adjust', account.id, '--reason', 'no amount').code, 2, 'bad arguments: 2');
  t.equal(ops('keys:create', '--scopes', 'read', '--account', 'acc_00000000000000000000000000').code, 3, 'no such account: 3');

  const check = ops('ledger:check', '--json');
  t.equal(check.code, 0);
  t.same(JSON.parse(check.out).violations, []);
  t.ok(JSON.parse(check.out).accountsChecked >= 1);

  const shown = ops('account:show', account.id, '--json');
  t.equal(shown.code, 0);
  t.same([JSON.parse(shown.out).account.status, JSON.parse(shown.out).credits.balance], ['active', 102500]);
  t.match(ops('account:show', account.id).out, /status active, KYC approved, plan Starter v1/);
  t.equal(ops('payments:confirm', 'pay_00000000000000000000000000', '--reference', 'x').code, 3);
  const requeue = ops('outbox:requeue', '--json');
  t.equal(requeue.code, 0);
  t.ok(JSON.parse(requeue.out).relayed >= 1, 'unrelayed rows were relayed');
  // A month of audit events ten years old (retention 96 months) goes now, not at the workers' next hour.
  const decade = (await ctx.query(`select billing_history_partition('audit_events', now() - interval '10 years') as name`)).rows[0].name;
  const history = ops('history:maintain', '--json');
  t.equal(history.code, 0);
  t.ok(JSON.parse(history.out).dropped.includes(decade), `${decade} dropped`);
  t.equal(JSON.parse(history.out).partitions, 21, 'three months (this one and two ahead) of each of the seven tables');
  t.equal(ops('nonsense').code, 2);
  const audited = await ctx.call('GET', `/v1/audit-events?accountId=${account.id}`);
  t.ok(audited.body.data.some((e: any) => e.action === 'credits.adjust' && e.actorKeyId === 'cli'), 'CLI actions are audited');
});

t.test('the rate limit holds across two real api processes', async (t) => {
  const { spawn } = await import('node:child_process');
  const { createServer } = await import('node:net');
  const ctx = await setup(t, { RATE_LIMIT_PER_MINUTE: '4' });
  const root = new URL('..', import.meta.url).pathname;
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const child = spawn(process.execPath, entryArgv('src/server.ts'), {
    cwd: root,
    env: { ...process.env, DATABASE_URL: ctx.config.DATABASE_URL, QUEUE_PREFIX: ctx.config.QUEUE_PREFIX, RATE_LIMIT_PER_MINUTE: '4', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent' },
    stdio: 'ignore',
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const deadline = Date.now() + 20_000;
  while (!(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline) throw new Error('the second api process did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const key = await ctx.key(['read']);
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    statuses.push((await ctx.app.inject({ method: 'GET', url: '/v1/billing-cycles', headers: { authorization: `Bearer ${key}` } })).statusCode);
    const res = await fetch(`http://127.0.0.1:${port}/v1/billing-cycles`, { headers: { authorization: `Bearer ${key}` } });
    statuses.push(res.status);
    if (res.status === 429) t.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After from the other process');
  }
  t.same(statuses, [200, 200, 200, 200, 429, 429], 'four a minute across both processes');
});
