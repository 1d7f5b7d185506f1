import type { Db } from '../db/client.js';
import { DEFAULT_RETENTION, maintainHistory, type Retention } from '../db/history.js';
import type { Clock } from '../lib/clock.js';
import { throttledFailures } from '../lib/log-throttle.js';
import type { Logger } from '../lib/logger.js';
import { RETENTION_MS } from '../modules/idempotency/domain.js';
import { purgeOlderThan } from '../modules/idempotency/repo.js';
import type { PurchaseService } from '../modules/credits/purchases.js';
import type { RenewalService } from '../modules/renewals/service.js';
import type { PaymentsService } from '../modules/payments/service.js';
import type { WebhookService } from '../modules/webhooks/service.js';
import type { CreditNotesService } from '../modules/credit-notes/service.js';
import type { DepletionForecasts } from '../modules/credits/alerts.js';
import type { HoldsService } from '../modules/holds/service.js';
import { createEventRequeuer } from './outbox-relay.js';
import type { Queues } from './registry.js';
import { scheduleDueWork } from './scheduler.js';

export interface PeriodicTask {
  name: string;
  everyMs: number;
  /** When the first run is, after start; `everyMs` without it. A task that runs rarely runs early too, or workers restarted more often than it runs would never run it. */
  firstAfterMs?: number;
  run(): Promise<unknown>;
}

/**
 * Sweeps that any number of workers may run at once: each finds its work in Postgres and
 * settles it idempotently, so nothing depends on Redis having kept a job.
 */
export function maintenanceTasks(deps: {
  db: Db;
  clock: Clock;
  payments: PaymentsService;
  renewals: RenewalService;
  purchases: PurchaseService;
  webhooks: WebhookService;
  /** Without it (an older caller), refunds are reconciled by their request's retry only. */
  creditNotes?: CreditNotesService;
  queues: Queues;
  schedulerIntervalMs: number;
  holds: HoldsService;
  forecasts: DepletionForecasts;
  /** Months kept per partitioned history table; without it, the defaults. */
  historyRetention?: Retention;
  /** Told of expired months kept because something in them is still owed. */
  logger?: Logger;
}): PeriodicTask[] {
  return [
    {
      name: 'schedule due renewals and retries',
      everyMs: deps.schedulerIntervalMs,
      run: () => scheduleDueWork(deps),
    },
    {
      // Grace: six scheduler passes (30 s by default), 10 s at least, before a job counts as
      // possibly lost; no more often than every 2 s. A backlog (a renewal wave's emails) is
      // not re-added many times a second by a fast scheduler.
      name: 'queue again relayed events whose job Redis lost',
      everyMs: Math.max(deps.schedulerIntervalMs, 2_000),
      run: createEventRequeuer({ db: deps.db, queues: deps.queues, graceMs: Math.max(6 * deps.schedulerIntervalMs, 10_000) }),
    },
    {
      name: 'reconcile unknown payments',
      everyMs: 15_000,
      run: () => deps.payments.reconcileStale(),
    },
    {
      name: 'reconcile unanswered refunds',
      everyMs: 15_000,
      run: () => deps.creditNotes?.reconcileRefunds() ?? Promise.resolve(0),
    },
    {
      // A crashed caller's holds: freed within seconds of their time running out.
      name: 'release expired holds',
      everyMs: Math.min(deps.schedulerIntervalMs, 5_000),
      run: async () => ({ expired: await deps.holds.expireDue() }),
    },
    {
      name: 'send depletion forecasts',
      everyMs: 60_000,
      run: async () => ({ sent: await deps.forecasts.sweep() }),
    },
    {
      // Wall-clock months: the migration made two ahead, so an hourly pass is plenty.
      name: 'keep history partitions',
      everyMs: 60 * 60_000,
      firstAfterMs: 60_000,
      run: async () => {
        const result = await maintainHistory(deps.db, new Date(), deps.historyRetention ?? DEFAULT_RETENTION);
        if (result.held.length) deps.logger?.warn({ held: result.held }, 'expired history months kept: something in them is still owed (see docs/operations.md, Partitioned history)');
        return result;
      },
    },
    {
      name: 'purge expired idempotency records',
      everyMs: 10 * 60_000,
      firstAfterMs: 60_000,
      run: async () => ({ purged: await purgeOlderThan(deps.db, new Date(deps.clock.now().getTime() - RETENTION_MS)) }),
    },
  ];
}

/** Runs each task on its interval, one run at a time, logging failures; stop() waits for running ones. */
export function runPeriodically(tasks: PeriodicTask[], logger: Logger) {
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<Promise<unknown>>();
  const failures = throttledFailures();
  let stopped = false;
  for (const task of tasks) {
    let busy = false;
    const tick = () => {
      if (busy || stopped) return;
      busy = true;
      const run = task
        .run()
        .then(() => failures.recovered(task.name, () => logger.info({ task: task.name }, 'periodic task succeeds again')))
        .catch((err) => failures.failed(task.name, (suppressed) => logger.error({ err, task: task.name, suppressed }, 'periodic task failed')))
        .finally(() => {
          busy = false;
          running.delete(run);
        });
      running.add(run);
    };
    const every = setInterval(tick, task.everyMs);
    every.unref();
    timers.push(every);
    if (task.firstAfterMs !== undefined && task.firstAfterMs < task.everyMs) {
      const first = setTimeout(tick, task.firstAfterMs);
      first.unref();
      timers.push(first);
    }
  }
  return {
    async stop() {
      stopped = true;
      timers.forEach(clearTimeout);
      await Promise.all(running);
    },
  };
}
