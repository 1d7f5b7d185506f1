import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Processor, type Queue, type WorkerOptions } from 'bullmq';
import { createEventDispatcher } from './jobs/dispatch-event.js';
import { maintenanceTasks, runPeriodically } from './jobs/maintenance.js';
import { accountsWithWebhooks, createOutboxRelay } from './jobs/outbox-relay.js';
import { createRenewalProcessor } from './jobs/process-renewal.js';
import { queueDefinitions } from './jobs/registry.js';
import { mailDirOf, taxationOf } from './config.js';
import { createFileMailer, createSmtpMailer, type Mailer } from './modules/notifications/mailer.js';
import { createNotificationsService } from './modules/notifications/service.js';
import { workerConnection } from './infra.js';
import { isCluster } from './lib/redis.js';
import { throttledFailures } from './lib/log-throttle.js';
import type { Runtime } from './runtime.js';
import { createServices } from './services.js';
import { yieldToRenewals } from './jobs/yield.js';
import { creditNotePdfById } from './modules/credit-notes/documents.js';
import { recordJob } from './jobs/job-stats.js';
import { superviseWorker } from './jobs/supervise.js';

/** BullMQ workers and the outbox relay; no HTTP. Closing lets running jobs finish. */
/** How long closing waits for BullMQ's workers before it disconnects them. */
const WORKER_CLOSE_MS = 10_000;

export async function startWorkers(runtime: Runtime, opts: { mailer?: Mailer } = {}) {
  const { config, logger, database, redis, queues, clock } = runtime;
  // Workers wait for Redis to come back; everything else on `redis` fails fast meanwhile.
  const connection = workerConnection(redis);
  connection.on('error', () => {}); // reconnects by itself; workers report their own errors
  const mailer =
    opts.mailer ?? (config.SMTP_URL ? createSmtpMailer(config.SMTP_URL, config.MAIL_FROM) : createFileMailer(mailDirOf(config), config.MAIL_FROM));
  const notifications = createNotificationsService({ db: database.db, clock, mailer, taxation: taxationOf(config), creditNotePdf: creditNotePdfById(database.db, clock) });

  const { payments, renewals, purchases, webhooks, secrets, creditNotes, holds, forecasts } = createServices(runtime);
  // Secrets at rest under the current SECRETS_KEYS key (legacy or rotated-out forms sealed
  // again); in the background: a failure is logged and `ops secrets:rotate` does the same.
  void secrets
    .rotate()
    .then((done) => {
      if (done.webhooks.unreadable.length) logger.error({ endpoints: done.webhooks.unreadable }, 'webhook secrets no SECRETS_KEYS key can read');
      else if (done.webhooks.resealed || done.apiKeys.rehashed) logger.info(done, 'secrets sealed under the current key');
    })
    .catch((err) => logger.error({ err }, 'could not seal secrets under the current key; run `ops secrets:rotate`'));
  const services = { payments, renewals, purchases, webhooks, creditNotes, holds, forecasts };
  // BullMQ (6.7) workers on a Redis Cluster no node of which answers retry without ever yielding
  // to the event loop (seen when a worker starts during an outage): on a cluster they start,
  // with the relay and the sweeps, once it answers.
  if (isCluster(redis) && redis.status !== 'ready') {
    logger.warn('waiting for the Redis Cluster to answer before starting the workers');
    await new Promise((resolve) => redis.once('ready', resolve)); // not events.once: it rejects on the errors met meanwhile
  }
  // After a connection error BullMQ waits runRetryDelay before it fetches (or completes) again:
  // 15 s by default, so after a Redis restart or a cluster failover a worker came back up to
  // 15 s per failed try late (emails 17 s after Redis returned). One second is a cheap poll.
  const common = { connection, prefix: config.QUEUE_PREFIX, runRetryDelay: 1_000 };
  // While Redis is away every worker reports each reconnect attempt: a line per outage, not per attempt.
  const workerErrors = throttledFailures();
  const onWorkerError = (name: string) => (err: Error) => workerErrors.failed(name, (suppressed) => logger.error({ err, suppressed }, `${name} worker error`));
  /**
   * A worker on a queue, with its handlers (errors logged, failures too when `logFailures`; job
   * counts and durations kept in Redis for /metrics, which any api process reports), supervised:
   * one that stops taking jobs while they wait is replaced (src/jobs/supervise.ts).
   */
  const supervised = (queue: Queue, processor: Processor, options: Omit<WorkerOptions, 'connection'>, logFailures = false) =>
    superviseWorker({
      queue,
      logger,
      stuckMs: config.WORKER_STUCK_MS,
      make: () => {
        const worker = new Worker(queue.name, processor, { ...common, ...options });
        worker.on('error', onWorkerError(queue.name));
        worker.on('failed', (job, err) => {
          if (logFailures) logger.warn({ err, jobId: job?.id, queue: queue.name }, 'job failed');
          recordJob(redis, config.QUEUE_PREFIX, queue.name, { ok: false, seconds: 0 }).catch(() => {});
        });
        worker.on('completed', (job) => {
          const seconds = job.finishedOn && job.processedOn ? (job.finishedOn - job.processedOn) / 1000 : 0;
          recordJob(redis, config.QUEUE_PREFIX, queue.name, { ok: true, seconds }).catch(() => {});
        });
        return worker;
      },
    });
  const eventsWorker = supervised(queues.events, createEventDispatcher({ db: database.db, notifications }), { concurrency: 20 }, true);

  const relay = createOutboxRelay({
    db: database.db,
    queues,
    logger,
    pollMs: config.OUTBOX_POLL_MS,
    onRelay: async (tx, rows) => {
      // fanOut finds no endpoint for an account without one: skip those rows with one query for the pass.
      const subscribed = await accountsWithWebhooks(tx, rows.flatMap((r) => (r.accountId ? [r.accountId] : [])));
      for (const row of rows) if (row.accountId && subscribed.has(row.accountId)) await webhooks.fanOut(row, tx);
    },
  });
  relay.start();
  const emailsYield = yieldToRenewals({ renewals: queues.renewals, emails: { pause: (doNotWaitActive) => eventsWorker.current.pause(doNotWaitActive), resume: () => eventsWorker.current.resume() } });
  let closing = false;
  // A killed worker's renewals are picked up by another within about 20 s, not BullMQ's default
  // minute: the lock lapses after 15 s (a live worker renews it every 7.5 s, however long the
  // job), and stalled jobs are looked for every 5 s. Each step re-checks in Postgres, so a
  // job run again after a stall does nothing twice.
  const renew = createRenewalProcessor({ renewals, purchases, stopping: () => closing });
  const renewalsWorker = supervised(queues.renewals, renew, { concurrency: 20, lockDuration: 15_000, stalledInterval: 5_000, maxStalledCount: 3 }, true);
  const deliver = async (job: { data: unknown }) => {
    const { deliveryId, attempt } = queueDefinitions.webhooks.payload.parse(job.data);
    return { outcome: await webhooks.deliver(deliveryId, attempt) };
  };
  const webhookWorkers = [
    supervised(queues.webhooks, deliver, { concurrency: 20 }),
    supervised(queues.webhooksPriority, deliver, { concurrency: 50 }),
  ];
  const all = [eventsWorker, renewalsWorker, ...webhookWorkers];
  const periodic = runPeriodically(
    maintenanceTasks({ db: database.db, clock, ...services, queues, schedulerIntervalMs: config.SCHEDULER_INTERVAL_MS, historyRetention: config.HISTORY_RETENTION_MONTHS, logger }),
    logger,
  );
  logger.info('workers started');

  return {
    relay,
    async close() {
      closing = true;
      emailsYield.stop();
      await periodic.stop();
      await relay.stop();
      const closed = Promise.all(all.map((w) => w.close()));
      // BullMQ (6.7) workers that lived through a cluster failover sometimes never finish
      // closing (their blocking fetch is not released): wait a bounded time, then cut their
      // connections. A job cut off is retried when its lock lapses and re-checks Postgres.
      if (!(await Promise.race([closed.then(() => true), sleep(WORKER_CLOSE_MS, false, { ref: false })]))) {
        logger.warn({ waitedMs: WORKER_CLOSE_MS }, 'workers did not close in time (after a Redis outage or failover?): disconnecting them');
        // Their disconnect can hang as well: it is not waited for past 2 s either.
        const cut = Promise.all(all.map((w) => w.current.disconnect().catch(() => {})));
        await Promise.race([Promise.all([cut, closed]), sleep(2_000, undefined, { ref: false })]);
      }
      await connection.quit().catch(() => connection.disconnect());
      mailer.close();
    },
  };
}

