import { spawnSync } from 'node:child_process';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { scrapeQueries } from '../src/plugins/metrics.js';
import { setup } from './helper.js';

t.test('/metrics answers an ops key only', async (t) => {
  const ctx = await setup(t);
  const anonymous = await ctx.app.inject({ method: 'GET', url: '/metrics' });
  t.equal(anonymous.statusCode, 401);
  t.match(anonymous.headers['www-authenticate'], /^Bearer realm="billing-service"/);
  t.match(anonymous.headers['content-type'], /application\/problem\+json/);
  t.equal((await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.read}` } })).statusCode, 403);
  const ops = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } });
  t.equal(ops.statusCode, 200);
  t.match(ops.headers['content-type'], /^text\/plain; version=0\.0\.4/);
});

t.test('the exposition follows the Prometheus naming and type rules', async (t) => {
  const ctx = await setup(t);
  await ctx.call('GET', '/v1/plans');
  await ctx.call('GET', '/v1/plans/plan_nope_v1');
  const text = (await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } })).body;

  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        t.notOk(types.has(meta[2]!), `one TYPE line for ${meta[2]}`);
        types.set(meta[2]!, meta[3]!);
      } else helps.add(meta[2]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    t.ok(sample, `a well-formed sample: ${line}`);
    if (sample) samples.push(sample[1]!);
  }
  t.ok(types.size > 20, 'the families are there');
  for (const [name, type] of types) {
    t.ok(helps.has(name), `${name} has HELP`);
    t.ok(['counter', 'gauge', 'histogram', 'summary'].includes(type), `${name} is a ${type}`);
    if (type === 'counter') t.match(name, /_total$/, `counter ${name} ends in _total`);
    else t.notMatch(name, /_(total|sum|count|bucket)$/, `${type} ${name} does not end as a counter or a histogram's part`);
  }
  const familyOf = (sample: string) => {
    if (types.has(sample)) return sample;
    const base = sample.replace(/_(bucket|sum|count)$/, '');
    return ['histogram', 'summary'].includes(types.get(base) ?? '') ? base : undefined;
  };
  for (const sample of new Set(samples)) t.ok(familyOf(sample), `${sample} belongs to a declared family`);
  for (const name of ['bullmq_jobs_completed_total', 'bullmq_jobs_failed_total', 'bullmq_job_duration_seconds_total', 'billing_usage_events_total', 'http_request_errors_total']) {
    t.equal(types.get(name), 'counter', `${name} is a counter`);
  }
  for (const name of ['bullmq_queue_jobs', 'billing_outbox_lag_seconds', 'billing_renewals_overdue', 'billing_recharge_failures_last_hour', 'billing_webhook_attempt_failures_last_hour', 'billing_redis_up']) {
    t.equal(types.get(name), 'gauge', `${name} is a gauge`);
  }
  t.equal(types.get('http_request_duration_seconds'), 'histogram');
  // Alerts on increase(...) see the first failure only if the series exists before it, at 0.
  for (const queue of Object.values(ctx.queues)) {
    t.ok(text.includes(`bullmq_jobs_failed_total{queue="${queue.name}"} 0`), `bullmq_jobs_failed_total for ${queue.name} exists at 0 before any failure`);
  }
  for (const deliveryClass of ['standard', 'priority', 'guaranteed']) {
    t.ok(text.includes(`billing_webhook_attempt_failures_last_hour{delivery_class="${deliveryClass}"} 0`), `webhook failures for ${deliveryClass} at 0`);
  }

  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (promtool.error) t.comment('promtool not installed: its lint skipped');
  else t.equal(`${promtool.stdout}${promtool.stderr}`.trim(), '', 'promtool check metrics finds nothing');
});

t.test('a scrape reads no whole table: every query has a plan without a sequential scan', async (t) => {
  const ctx = await setup(t);
  for (const [name, query] of Object.entries(scrapeQueries)) {
    // Tables this small would be scanned whatever the indexes: forbid it, so only a plan with
    // an index path is possible, and fail if there is none.
    const plan = await ctx.database.db.transaction(async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      const rows = (await tx.execute(sql`explain (format json) ${query}`)) as unknown as { rows: Array<Record<string, unknown>> };
      return JSON.stringify(rows.rows[0]);
    });
    t.notMatch(plan, /"Seq Scan"/, `${name}: ${plan.match(/"Node Type":"[^"]+"/g)?.join(' ')}`);
  }
});
