import { QUEUE_ADD_DEADLINE_MS, withDeadline } from '../lib/deadline.js';
import type { Logger } from '../lib/logger.js';
import type { PurchaseService } from '../modules/credits/purchases.js';
import type { RenewalService } from '../modules/renewals/service.js';
import type { WebhookService } from '../modules/webhooks/service.js';
import { renewalJobId, webhookJobId, type JobPayload, type Queues } from './registry.js';

/** Renewals per batch transaction, and batches run side by side at most (each holds one pooled connection). */
export const RENEWAL_BATCH_SIZE = 500;
export const RENEWAL_BATCH_LANES = 4;

/**
 * The scheduler's pass: due renewals and retries are read from Postgres and handed to
 * BullMQ under business job ids. Postgres is the record: a Redis that lost its jobs gets
 * them again on the next pass, and the job itself re-checks that the work is still due.
 */
export async function scheduleDueWork(deps: {
  renewals: RenewalService;
  purchases: PurchaseService;
  webhooks: WebhookService;
  queues: Queues;
  logger?: Logger;
}): Promise<number> {
  const deliveries = await deps.webhooks.findDue();
  const standard = deliveries.filter((d) => d.deliveryClass === 'standard');
  const priority = deliveries.filter((d) => d.deliveryClass !== 'standard');
  const toJob = (d: (typeof deliveries)[number]) => {
    const data = { deliveryId: d.id, attempt: d.attempt };
    return { name: 'deliver', data, opts: { jobId: webhookJobId(data) } };
  };
  // A failure here must not keep renewals from being scheduled: the leases expire and the rows come back.
  try {
    if (standard.length) await withDeadline(deps.queues.webhooks.addBulk(standard.map(toJob)), QUEUE_ADD_DEADLINE_MS, 'queueing webhook deliveries');
    if (priority.length) await withDeadline(deps.queues.webhooksPriority.addBulk(priority.map(toJob)), QUEUE_ADD_DEADLINE_MS, 'queueing webhook deliveries');
  } catch (err) {
    deps.logger?.error({ err }, 'could not queue webhook deliveries');
  }

  const due = await deps.renewals.findDue();
  const recharges = await deps.purchases.findDueRecharges();
  // Plain renewals are not queued one by one: lanes drain them from Postgres in batches.
  const batchable = await deps.renewals.countBatchDue(RENEWAL_BATCH_SIZE * RENEWAL_BATCH_LANES);
  const lanes = Math.ceil(batchable / RENEWAL_BATCH_SIZE);
  const jobs: JobPayload<'renewals'>[] = [
    ...Array.from({ length: lanes }, (_, lane): JobPayload<'renewals'> => ({ kind: 'renew-batch', lane })),
    ...due.map((work): JobPayload<'renewals'> =>
      work.kind === 'retry'
        ? { kind: 'retry', invoiceId: work.invoiceId, attempt: work.attempt }
        : { kind: work.kind, subscriptionId: work.subscriptionId, periodEnd: work.periodEnd.toISOString() },
    ),
    ...recharges.map((r): JobPayload<'renewals'> => ({ kind: 'recharge', accountId: r.accountId, dueAt: r.dueAt.toISOString() })),
  ];
  if (jobs.length === 0) return deliveries.length;
  await withDeadline(
    deps.queues.renewals.addBulk(jobs.map((data) => ({ name: data.kind, data, opts: { jobId: renewalJobId(data) } }))),
    QUEUE_ADD_DEADLINE_MS,
    'queueing due work',
  );
  return jobs.length + deliveries.length;
}
