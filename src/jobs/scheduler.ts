import type { RenewalService } from '../modules/renewals/service.js';
import { renewalJobId, type JobPayload, type Queues } from './registry.js';

/**
 * The scheduler's pass: due renewals and retries are read from Postgres and handed to
 * BullMQ under business job ids. Postgres is the record: a Redis that lost its jobs gets
 * them again on the next pass, and the job itself re-checks that the work is still due.
 */
export async function scheduleDueWork(deps: { renewals: RenewalService; queues: Queues }): Promise<number> {
  const due = await deps.renewals.findDue();
  if (due.length === 0) return 0;
  await deps.queues.renewals.addBulk(
    due.map((work) => {
      const data: JobPayload<'renewals'> =
        work.kind === 'renew'
          ? { kind: 'renew', subscriptionId: work.subscriptionId, periodEnd: work.periodEnd.toISOString() }
          : { kind: 'retry', invoiceId: work.invoiceId, attempt: work.attempt };
      return { name: work.kind, data, opts: { jobId: renewalJobId(data) } };
    }),
  );
  return due.length;
}
