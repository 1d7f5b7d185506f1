import type { Job } from 'bullmq';
import type { RenewalService } from '../modules/renewals/service.js';
import { queueDefinitions, type JobPayload } from './registry.js';

/** Renews a period or retries a declined renewal; both re-check in Postgres, so a re-run is a no-op. */
export function createRenewalProcessor(deps: { renewals: RenewalService }) {
  return async function processRenewal(job: Job<JobPayload<'renewals'>>) {
    const work = queueDefinitions.renewals.payload.parse(job.data);
    if (work.kind === 'renew') return { outcome: await deps.renewals.renew(work.subscriptionId, new Date(work.periodEnd)) };
    return { outcome: await deps.renewals.retry(work.invoiceId, work.attempt) };
  };
}
