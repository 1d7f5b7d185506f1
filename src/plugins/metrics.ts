import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { withDeadline } from '../lib/deadline.js';
import { jobStatsKey } from '../jobs/job-stats.js';
import type { Queues } from '../jobs/registry.js';

/**
 * Prometheus at /metrics: HTTP rate, latency and errors by route and status; queue depth,
 * job counts, durations and failures by queue; outbox lag; renewals overdue; recharge
 * failures; webhook delivery failures by class; and Node's own process metrics. Not part
 * of the API (kept out of the OpenAPI document): expose it to the scraper only.
 */
export default fp(
  async function metricsPlugin(
    app: FastifyInstance,
    opts: { db: Db; redis: Redis; queues?: Queues; prefix: string; usageStats?: () => { transactions: number; events: number }; cacheLive?: () => boolean },
  ) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
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
    const jobStat = (name: string, help: string, field: string) =>
      new Gauge({
        name,
        help,
        labelNames: ['queue'],
        registers: [registry],
        async collect() {
          const stats = await redis.hgetall(jobStatsKey(prefix)).catch(() => ({}) as Record<string, string>);
          for (const [key, value] of Object.entries(stats)) {
            const [queue, kind] = key.split(':');
            if (kind === field) this.set({ queue: queue! }, Number(value));
          }
        },
      });
    jobStat('bullmq_jobs_completed_total', 'Jobs completed by queue, all workers', 'completed');
    jobStat('bullmq_job_duration_seconds_sum', 'Seconds spent in completed jobs by queue, all workers', 'seconds');
    jobStat('bullmq_jobs_failed_total', 'Job attempts that failed by queue, all workers', 'failed');

    const fromDb = (name: string, help: string, query: ReturnType<typeof sql>, labelNames: string[] = []) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          // Without Postgres the scrape still answers, without these series.
          const rows = ((await db.execute(query).catch(() => ({ rows: [] }))) as unknown as { rows: Array<Record<string, string | null>> }).rows;
          this.reset();
          for (const row of rows) {
            const l = Object.fromEntries(labelNames.map((n) => [n, String(row[n])]));
            this.set(l, Number(row.value ?? 0));
          }
        },
      });
    fromDb('billing_outbox_lag_seconds', 'Age of the oldest outbox row not yet relayed (0: none)', sql`select coalesce(extract(epoch from now() - min(created_at)), 0) as value from outbox where relayed_at is null`);
    fromDb(
      'billing_renewals_overdue',
      'Active subscriptions whose period ended over a minute ago and are not renewed yet',
      sql`select count(*) as value from subscriptions s join accounts a on a.id = s.account_id where s.status = 'active' and a.test_clock_id is null and s.current_period_end < now() - interval '1 minute'`,
    );
    fromDb('billing_recharge_failures_total', 'Auto-recharge charges that failed', sql`select count(*) as value from payments where purpose = 'recharge' and status = 'failed'`);
    fromDb(
      'billing_webhook_delivery_failures_total',
      'Webhook attempts that did not get a 2xx, by delivery class',
      sql`select d.delivery_class, count(*) as value from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id
          where a.status_code is null or a.status_code < 200 or a.status_code >= 300 group by d.delivery_class`,
      ['delivery_class'],
    );

    // Group commit: events per transaction is the batching the usage path achieves under load.
    const { usageStats, cacheLive } = opts;
    if (usageStats) {
      new Gauge({ name: 'billing_usage_transactions_total', help: 'Usage transactions committed by this process', registers: [registry], collect() { this.set(usageStats().transactions); } });
      new Gauge({ name: 'billing_usage_events_total', help: 'Usage events rated by this process', registers: [registry], collect() { this.set(usageStats().events); } });
    }
    new Gauge({
      name: 'billing_redis_up',
      help: '1 while Redis answers this process; 0 while it does not (authorize, usage and reads go on without it)',
      registers: [registry],
      async collect() {
        const up = await Promise.race([redis.ping().then(() => 1), new Promise<number>((r) => setTimeout(r, 1000, 0).unref())]).catch(() => 0);
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

    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'metrics' },
);
