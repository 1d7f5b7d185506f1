import { Queue, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';

/**
 * Every queue of the service: its name and the zod schema of its payload. Any process may
 * enqueue; the worker process consumes. Job ids are business keys, so a re-enqueue of the
 * same work is a no-op while the job exists; Postgres keeps the real idempotency.
 */
export const queueDefinitions = {
  events: {
    name: 'events',
    payload: z.object({ outboxId: z.number().int().positive(), eventId: z.string(), type: z.string() }),
  },
  /** Billing work that falls due: renewals, dunning retries, auto-recharges. */
  renewals: {
    name: 'renewals',
    payload: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('renew'), subscriptionId: z.string(), periodEnd: z.string() }),
      /** A drain of due plain renewals in batches (renewDue); `lane` k of the scheduler's parallel drains. */
      z.object({ kind: z.literal('renew-batch'), lane: z.number().int().min(0) }),
      z.object({ kind: z.literal('retry'), invoiceId: z.string(), attempt: z.number().int() }),
      z.object({ kind: z.literal('recharge'), accountId: z.string(), dueAt: z.string() }),
      z.object({ kind: z.literal('notice'), subscriptionId: z.string(), periodEnd: z.string() }),
    ]),
  },
  /** Webhook deliveries: standard on one queue, priority and guaranteed on their own. */
  webhooks: { name: 'webhooks', payload: z.object({ deliveryId: z.string(), attempt: z.number().int().min(1) }) },
  webhooksPriority: { name: 'webhooks-priority', payload: z.object({ deliveryId: z.string(), attempt: z.number().int().min(1) }) },
} as const;

export const webhookJobId = (work: JobPayload<'webhooks'>): string => `whd-${work.deliveryId}-${work.attempt}`;

/** One job per subscription and period, per invoice and attempt: two sweeps cannot queue the same work twice. */
export const renewalJobId = (work: JobPayload<'renewals'>): string => {
  switch (work.kind) {
    case 'renew':
      return `renew-${work.subscriptionId}-${Date.parse(work.periodEnd)}`;
    // A lane runs until nothing batchable is due: while one is queued or running, another is not needed.
    case 'renew-batch':
      return `renew-batch-${work.lane}`;
    case 'retry':
      return `retry-${work.invoiceId}-${work.attempt}`;
    case 'recharge':
      return `recharge-${work.accountId}-${Date.parse(work.dueAt)}`;
    case 'notice':
      return `notice-${work.subscriptionId}-${Date.parse(work.periodEnd)}`;
  }
};

export type QueueKey = keyof typeof queueDefinitions;
export type JobPayload<K extends QueueKey> = z.infer<(typeof queueDefinitions)[K]['payload']>;

export type Queues = { [K in QueueKey]: Queue<JobPayload<K>> };

export function createQueues(connection: ConnectionOptions, prefix: string): Queues {
  // Deliveries live in Postgres; a job is only the nudge to attempt one now.
  const webhookJobs = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: true };
  const queues: Queues = {
    webhooks: new Queue(queueDefinitions.webhooks.name, { connection, prefix, defaultJobOptions: webhookJobs }),
    webhooksPriority: new Queue(queueDefinitions.webhooksPriority.name, { connection, prefix, defaultJobOptions: webhookJobs }),
    // Postgres is the record of due work: a finished or failed job must not keep its id, or
    // the next sweep's job for the same period would be dropped as a duplicate.
    renewals: new Queue(queueDefinitions.renewals.name, {
      connection,
      prefix,
      defaultJobOptions: { attempts: 8, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: true, removeOnFail: true },
    }),
    events: new Queue(queueDefinitions.events.name, {
      connection,
      prefix,
      defaultJobOptions: {
        attempts: 12,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    }),
  };
  // A queue re-emits its connection's errors; while Redis is away every add fails on its
  // own (and is retried from Postgres), so the events add nothing but noise.
  for (const queue of Object.values(queues)) queue.on('error', () => {});
  return queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
