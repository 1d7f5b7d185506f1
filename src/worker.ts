import { Worker } from 'bullmq';
import { createEventDispatcher } from './jobs/dispatch-event.js';
import { maintenanceTasks, runPeriodically } from './jobs/maintenance.js';
import { createOutboxRelay } from './jobs/outbox-relay.js';
import { createRenewalProcessor } from './jobs/process-renewal.js';
import { queueDefinitions } from './jobs/registry.js';
import { mailDirOf } from './config.js';
import { createFileMailer, createSmtpMailer, type Mailer } from './modules/notifications/mailer.js';
import { createNotificationsService } from './modules/notifications/service.js';
import { isMainModule, runProcess, type Runtime } from './runtime.js';
import { createServices } from './services.js';

/** BullMQ workers and the outbox relay; no HTTP. Closing lets running jobs finish. */
export async function startWorkers(runtime: Runtime, opts: { mailer?: Mailer } = {}) {
  const { config, logger, database, redis, queues, clock } = runtime;
  const mailer =
    opts.mailer ?? (config.SMTP_URL ? createSmtpMailer(config.SMTP_URL, config.MAIL_FROM) : createFileMailer(mailDirOf(config), config.MAIL_FROM));
  const notifications = createNotificationsService({ db: database.db, clock, mailer });

  const eventsWorker = new Worker(queueDefinitions.events.name, createEventDispatcher({ db: database.db, notifications }), {
    connection: redis,
    prefix: config.QUEUE_PREFIX,
    concurrency: 20,
  });
  eventsWorker.on('failed', (job, err) => logger.warn({ err, jobId: job?.id, queue: 'events' }, 'job failed'));
  eventsWorker.on('error', (err) => logger.error({ err }, 'events worker error'));

  const relay = createOutboxRelay({ db: database.db, queues, clock, logger, pollMs: config.OUTBOX_POLL_MS });
  relay.start();
  const { upgrades, renewals, purchases } = createServices(runtime);
  const renewalsWorker = new Worker(queueDefinitions.renewals.name, createRenewalProcessor({ renewals, purchases }), {
    connection: redis,
    prefix: config.QUEUE_PREFIX,
    concurrency: 20,
  });
  renewalsWorker.on('failed', (job, err) => logger.warn({ err, jobId: job?.id, queue: 'renewals' }, 'job failed'));
  renewalsWorker.on('error', (err) => logger.error({ err }, 'renewals worker error'));
  const periodic = runPeriodically(
    maintenanceTasks({ db: database.db, clock, upgrades, renewals, purchases, queues, schedulerIntervalMs: config.SCHEDULER_INTERVAL_MS }),
    logger,
  );
  logger.info('workers started');

  return {
    relay,
    async close() {
      await periodic.stop();
      await relay.stop();
      await Promise.all([eventsWorker.close(), renewalsWorker.close()]);
      mailer.close();
    },
  };
}

if (isMainModule(import.meta.url)) await runProcess('worker', startWorkers);
