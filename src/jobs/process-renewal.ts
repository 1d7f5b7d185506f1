import type { Job } from 'bullmq';
import type { PurchaseService } from '../modules/credits/purchases.js';
import type { RenewalService } from '../modules/renewals/service.js';
import { queueDefinitions, type JobPayload } from './registry.js';
import { RENEWAL_BATCH_SIZE } from './scheduler.js';

/** Renews a period, retries a declined renewal, or runs an auto-recharge; each re-checks in Postgres, so a re-run is a no-op. */
export function createRenewalProcessor(deps: {
  renewals: RenewalService;
  purchases: PurchaseService;
  /** True once the worker is closing: a drain stops after its current batch. */
  stopping?: () => boolean;
}) {
  return async function processRenewal(job: Job<JobPayload<'renewals'>>) {
    const work = queueDefinitions.renewals.payload.parse(job.data);
    switch (work.kind) {
      case 'renew':
        return { outcome: await deps.renewals.renew(work.subscriptionId, new Date(work.periodEnd)) };
      case 'renew-batch':
        return await deps.renewals.renewDue({ batchSize: RENEWAL_BATCH_SIZE, shouldStop: deps.stopping });
      case 'retry':
        return { outcome: await deps.renewals.retry(work.invoiceId, work.attempt) };
      case 'recharge':
        return { outcome: await deps.purchases.recharge(work.accountId) };
      case 'notice':
        return { outcome: await deps.renewals.sendRenewalNotice(work.subscriptionId, new Date(work.periodEnd)) };
    }
  };
}
