import { Worker } from 'bullmq';
import { createEventDispatcher } from './jobs/dispatch-event.js';
import { maintenanceTasks, runPeriodically } from './jobs/maintenance.js';
import { accountsWithWebhooks, createOutboxRelay } from './jobs/outbox-relay.js';
import { createRenewalProcessor } from './jobs/process-renewal.js';
import { queueDefinitions } from './jobs/registry.js';
import { mailDirOf } from './config.js';
import { createFileMailer, createSmtpMailer, type Mailer } from './modules/notifications/mailer.js';
import { createNotificationsService } from './modules/notifications/service.js';
import { isMainModule, runProcess, type Runtime } from './runtime.js';
import { createServices } from './services.js';
import { recordJob } from './jobs/job-stats.js';

/** BullMQ workers and the outbox relay; no HTTP. Closing lets running jobs finish. */
export async function startWorkers(runtime: Runtime, opts: { mailer?: Mailer } = {}) {
  const { config, logger, database, redis, queues, clock } = runtime;
  const mailer =
    opts.mailer ?? (config.SMTP_URL ? createSmtpMailer(config.SMTP_URL, config.MAIL_FROM) : createFileMailer(mailDirOf(config), config.MAIL_FROM));
  const notifications = createNotificationsService({ db: database.db, clock, mailer });

  const { upgrades, renewals, purchases, webhooks } = createServices(runtime);
  const services = { upgrades, renewals, purchases, webhooks };
  const eventsWorker = new Worker(queueDefinitions.events.name, createEventDispatcher({ db: database.db, notifications }), {
    connection: redis,
    prefix: config.QUEUE_PREFIX,
    concurrency: 20,
  });
  eventsWorker.on('failed', (job, err) => logger.warn({ err, jobId: job?.id, queue: 'events' }, 'job failed'));
  eventsWorker.on('error', (err) => logger.error({ err }, 'events worker error'));

  const relay = createOutboxRelay({
    db: database.db,
    queues,
    clock,
    logger,
    pollMs: config.OUTBOX_POLL_MS,
    onRelay: async (tx, rows) => {
      // fanOut finds no endpoint for an account without one: skip those rows with one query for the pass.
      const subscribed = await accountsWithWebhooks(tx, rows.flatMap((r) => (r.accountId ? [r.accountId] : [])));
      for (const row of rows) if (row.accountId && subscribed.has(row.accountId)) await webhooks.fanOut(row, tx);
    },
  });
  relay.start();
  let closing = false;
  const renewalsWorker = new Worker(queueDefinitions.renewals.name, createRenewalProcessor({ renewals, purchases, stopping: () => closing }), {
    connection: redis,
    prefix: config.QUEUE_PREFIX,
    concurrency: 20,
  });
  renewalsWorker.on('failed', (job, err) => logger.warn({ err, jobId: job?.id, queue: 'renewals' }, 'job failed'));
  renewalsWorker.on('error', (err) => logger.error({ err }, 'renewals worker error'));
  const deliver = async (job: { data: unknown }) => {
    const { deliveryId, attempt } = queueDefinitions.webhooks.payload.parse(job.data);
    return { outcome: await webhooks.deliver(deliveryId, attempt) };
  };
  const webhookWorkers = [
    new Worker(queueDefinitions.webhooks.name, deliver, { connection: redis, prefix: config.QUEUE_PREFIX, concurrency: 20 }),
    new Worker(queueDefinitions.webhooksPriority.name, deliver, { connection: redis, prefix: config.QUEUE_PREFIX, concurrency: 50 }),
  ];
  for (const w of webhookWorkers) w.on('error', (err) => logger.error({ err }, 'webhook worker error'));
  // Job counts and durations for /metrics, kept in Redis so any api process can report them.
  for (const w of [eventsWorker, renewalsWorker, ...webhookWorkers]) {
    w.on('completed', (job) => {
      const seconds = job.finishedOn && job.processedOn ? (job.finishedOn - job.processedOn) / 1000 : 0;
      recordJob(redis, config.QUEUE_PREFIX, w.name, { ok: true, seconds }).catch(() => {});
    });
    w.on('failed', () => {
      recordJob(redis, config.QUEUE_PREFIX, w.name, { ok: false, seconds: 0 }).catch(() => {});
    });
  }
  const periodic = runPeriodically(
    maintenanceTasks({ db: database.db, clock, ...services, queues, schedulerIntervalMs: config.SCHEDULER_INTERVAL_MS }),
    logger,
  );
  logger.info('workers started');

  return {
    relay,
    async close() {
      closing = true;
      await periodic.stop();
      await relay.stop();
      await Promise.all([eventsWorker.close(), renewalsWorker.close(), ...webhookWorkers.map((w) => w.close())]);
      mailer.close();
    },
  };
}

if (isMainModule(import.meta.url)) await runProcess('worker', startWorkers);
