import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import type { Clock } from '../lib/clock.js';
import { withDeadline } from '../lib/deadline.js';
import { redisAnswers, type RedisClient } from '../lib/redis.js';
import { AppError } from '../lib/errors.js';
import { grants } from '../modules/auth/domain.js';
import { bearerGate } from './auth.js';
import type { AuthService } from '../modules/auth/service.js';
import { jobStatsKey } from '../jobs/job-stats.js';
import { retryWindowMs } from '../modules/webhooks/domain.js';
import type { Queues } from '../jobs/registry.js';

/** Rows a scrape reads at most from one table: the newest, by primary key (see scrapeQueries). */
const RECENT_ROWS = 10_000;

/**
 * What a scrape asks Postgres. Each reads an index range, never a whole table: the oldest
 * unrelayed outbox row through its partial index; overdue renewals through the period-end
 * index, counted up to a cap; failures of the last hour among the newest rows by primary key.
 * Exported so a test can check every plan.
 */
export const scrapeQueries = {
  outboxLag: sql`select coalesce(extract(epoch from now() - (select created_at from outbox where relayed_at is null order by id limit 1)), 0) as value`,
  renewalsOverdue: sql`select count(*) as value from (
      select 1 from subscriptions s join accounts a on a.id = s.account_id
      where s.status = 'active' and a.test_clock_id is null and s.current_period_end < now() - interval '1 minute'
      limit ${sql.raw(String(RECENT_ROWS))}) overdue`,
  rechargeFailures: sql`select count(*) as value from (select purpose, status, created_at from payments order by id desc limit ${sql.raw(String(RECENT_ROWS))}) p
      where p.purpose = 'recharge' and p.status = 'failed' and p.created_at > now() - interval '1 hour'`,
  webhookFailures: sql`select d.delivery_class, count(*) as value
      from (select delivery_id, status_code, attempted_at from webhook_attempts order by id desc limit ${sql.raw(String(RECENT_ROWS))}) a
      join webhook_deliveries d on d.id = a.delivery_id
      where (a.status_code is null or a.status_code < 200 or a.status_code >= 300) and a.attempted_at > now() - interval '1 hour'
      group by d.delivery_class`,
};

/**
 * Prometheus at /metrics, for an ops key (`Authorization: Bearer`): HTTP rate, latency and
 * errors by route and status; queue depth, job counts, durations and failures by queue;
 * outbox lag; renewals overdue; recharge and webhook failures of the last hour; and Node's own
 * process metrics. Not part of the API (kept out of the OpenAPI document).
 */
export default fp(
  async function metricsPlugin(
    app: FastifyInstance,
    opts: {
      db: Db;
      redis: RedisClient;
      queues?: Queues;
      prefix: string;
      auth: AuthService;
      clock: Clock;
      failuresPerMinute: number;
      usageStats?: () => { transactions: number; events: number };
      authorizeOutcomes?: () => Iterable<{ action: string; outcome: string; count: number }>;
      cacheLive?: () => boolean;
    },
  ) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    // prom-client's sums of the by-type gauges end in _total, which names a counter: the
    // by-type series stay (nodejs_active_handles{type}...), their sum is a query away.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
    const labels = ['method', 'route', 'status_code'] as const;
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: labels,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    const errors = new Counter({ name: 'http_request_errors_total', help: 'HTTP answers of 4xx and 5xx by route and status', labelNames: labels, registers: [registry] });

    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      if (route !== '/metrics') {
        const l = { method: request.method, route, status_code: String(reply.statusCode) };
        duration.observe(l, reply.elapsedTime / 1000);
        if (reply.statusCode >= 400) errors.inc(l);
      }
      done();
    });

    const { db, redis, queues, prefix } = opts;
    new Gauge({
      name: 'bullmq_queue_jobs',
      help: 'Jobs per queue and state',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        if (!queues) return;
        // Without Redis the scrape still answers: these series are left out (see billing_redis_up).
        // A queue that never reached Redis waits for it: bounded, so the scrape answers.
        const counts = Promise.all(Object.values(queues).map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'failed')));
        const all = await withDeadline(counts, 1000, 'reading queue depths').catch(() => null);
        this.reset();
        Object.values(queues).forEach((queue, i) => {
          for (const [state, n] of Object.entries(all?.[i] ?? {})) this.set({ queue: queue.name, state }, n);
        });
      },
    });
    // Cumulative counts the workers keep in Redis: counters, set from Redis at each scrape.
    const jobStat = (name: string, help: string, field: string) =>
      new Counter({
        name,
        help,
        labelNames: ['queue'],
        registers: [registry],
        async collect() {
          const stats = await redis.hgetall(jobStatsKey(prefix)).catch(() => null);
          if (!stats) return; // without Redis: left out, as billing_redis_up says
          // Every queue's series exists from the first scrape, at 0: an alert on
          // increase(...[15m]) > 0 then sees the first failure too.
          for (const queue of Object.values(queues ?? {})) if (!(`${queue.name}:${field}` in stats)) {
            this.remove({ queue: queue.name });
            this.inc({ queue: queue.name }, 0);
          }
          for (const [key, value] of Object.entries(stats)) {
            const [queue, kind] = key.split(':');
            if (kind !== field) continue;
            this.remove({ queue: queue! });
            this.inc({ queue: queue! }, Number(value));
          }
        },
      });
    jobStat('bullmq_jobs_completed_total', 'Jobs completed by queue, all workers', 'completed');
    jobStat('bullmq_job_duration_seconds_total', 'Seconds spent in completed jobs by queue, all workers', 'seconds');
    jobStat('bullmq_jobs_failed_total', 'Job attempts that failed by queue, all workers', 'failed');

    /** zeroes: label sets that always have a series (0 when the query finds no row for them). */
    const fromDb = (name: string, help: string, query: ReturnType<typeof sql>, labelNames: string[] = [], zeroes: Array<Record<string, string>> = []) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          // Without Postgres the scrape still answers, without these series.
          const rows = ((await db.execute(query).catch(() => ({ rows: [] }))) as unknown as { rows: Array<Record<string, string | null>> }).rows;
          this.reset();
          for (const l of zeroes) this.set(l, 0);
          for (const row of rows) {
            const l = Object.fromEntries(labelNames.map((n) => [n, String(row[n])]));
            this.set(l, Number(row.value ?? 0));
          }
        },
      });
    fromDb('billing_outbox_lag_seconds', 'Age of the oldest outbox row not yet relayed (0: none)', scrapeQueries.outboxLag);
    fromDb('billing_renewals_overdue', `Active subscriptions whose period ended over a minute ago and are not renewed yet (counted up to ${RECENT_ROWS})`, scrapeQueries.renewalsOverdue);
    fromDb('billing_recharge_failures_last_hour', `Auto-recharge charges created in the last hour that failed (among the newest ${RECENT_ROWS} payments)`, scrapeQueries.rechargeFailures);
    fromDb(
      'billing_webhook_attempt_failures_last_hour',
      `Webhook attempts of the last hour that did not get a 2xx, by delivery class (among the newest ${RECENT_ROWS} attempts)`,
      scrapeQueries.webhookFailures,
      ['delivery_class'],
      Object.keys(retryWindowMs).map((c) => ({ delivery_class: c })),
    );

    // Group commit: events per transaction is the batching the usage path achieves under load.
    const { usageStats, cacheLive } = opts;
    if (usageStats) {
      const processCounter = (name: string, help: string, read: () => number) =>
        new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
      processCounter('billing_usage_transactions_total', 'Usage transactions committed by this process', () => usageStats().transactions);
      processCounter('billing_usage_events_total', 'Usage events and holds rated by this process (they share the group commit)', () => usageStats().events);
    }
    const { authorizeOutcomes } = opts;
    if (authorizeOutcomes) {
      new Counter({
        name: 'billing_authorizations_total',
        help: 'Authorize answers of this process by action and outcome (allowed, or the reason refused)',
        labelNames: ['action', 'outcome'],
        registers: [registry],
        collect() {
          this.reset();
          for (const { action, outcome, count } of authorizeOutcomes()) this.inc({ action, outcome }, count);
        },
      });
    }
    new Gauge({
      name: 'billing_redis_up',
      help: '1 while Redis answers this process; 0 while it does not (authorize, usage and reads go on without it)',
      registers: [registry],
      async collect() {
        const up = await Promise.race([redisAnswers(redis).then(() => 1), new Promise<number>((r) => setTimeout(r, 1000, 0).unref())]).catch(() => 0);
        this.set(up);
      },
    });
    new Gauge({
      name: 'billing_rate_limit_degraded',
      help: '1 while rate limits are counted per process because Redis does not answer',
      registers: [registry],
      collect() {
        this.set(app.hasDecorator('rateLimitDegraded') && app.rateLimitDegraded() ? 1 : 0);
      },
    });
    if (cacheLive) {
      new Gauge({ name: 'billing_change_feed_live', help: '1 while the change feed listens (caches in use), 0 while caches are bypassed', registers: [registry], collect() { this.set(cacheLive() ? 1 : 0); } });
    }

    // Operators only: the figures say how much business flows and where it hurts. Guesses
    // count per address as on the API (a budget of this plugin's own), through the API's own gate.
    const authenticate = bearerGate(opts);
    app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      const principal = await authenticate(request, reply, '/metrics needs an ops API key as `Authorization: Bearer <key>`');
      if (!grants(principal.scopes, 'ops') || principal.accountId) throw new AppError('insufficient_scope', '/metrics needs the ops scope');
      reply.type(registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'metrics' },
);
