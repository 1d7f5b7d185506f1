import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { webhookEndpoints } from '../db/schema/index.js';
import { QUEUE_ADD_DEADLINE_MS, withDeadline } from '../lib/deadline.js';
import { throttledFailures } from '../lib/log-throttle.js';
import type { Logger } from '../lib/logger.js';
import { claimUnrelayed, listUnhandled, markRelayed, type OutboxRow } from '../modules/events/repo.js';
import { emailingEventTypes } from '../modules/notifications/templates.js';
import type { Queues } from './registry.js';

const BATCH = 200;

/**
 * Moves committed outbox rows to the events queue. Rows are claimed with SKIP LOCKED and
 * marked in the same transaction as the enqueue: if the commit fails after the enqueue, the
 * next pass enqueues again under the same job id, and the handlers are idempotent. Only
 * events that may email get a job; the others are handled once relayed (their webhook
 * deliveries are rows written here). A job Redis loses is queued again by requeueLostEvents.
 */
export function createOutboxRelay(deps: {
  db: Db;
  queues: Queues;
  logger: Logger;
  pollMs: number;
  /** Work that must exist before an event counts as relayed (webhook deliveries), in the same transaction. */
  onRelay?: (tx: Db, rows: OutboxRow[]) => Promise<void>;
}) {
  const { db, queues, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = true;
  let stopping = false;

  async function relayOnce(): Promise<number> {
    return db.transaction(async (tx) => {
      const rows = await claimUnrelayed(tx, BATCH);
      if (rows.length === 0) return 0;
      const jobs = rows.filter((row) => emailingEventTypes.has(row.type));
      if (jobs.length) await withDeadline(queues.events.addBulk(jobs.map(eventJob)), QUEUE_ADD_DEADLINE_MS, 'queueing events');
      await deps.onRelay?.(tx, rows);
      await markRelayed(
        tx,
        rows.map((r) => r.id),
        rows.filter((row) => !emailingEventTypes.has(row.type)).map((r) => r.id),
      );
      return rows.length;
    });
  }

  async function drain(): Promise<number> {
    let total = 0;
    // A backlog (a renewal wave's events) must not hold up a closing worker: the next one takes it over.
    for (let n = await relayOnce(); n > 0; n = stopping ? 0 : await relayOnce()) total += n;
    return total;
  }

  const failures = throttledFailures();
  function tick() {
    running = drain()
      .then(() => failures.recovered('relay', () => logger.info('outbox relay passes succeed again')))
      .catch((err) => failures.failed('relay', (suppressed) => logger.error({ err, suppressed }, 'outbox relay pass failed; retrying every pass')))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, deps.pollMs);
      });
  }

  return {
    relayOnce,
    drain,
    start() {
      stopped = false;
      stopping = false;
      tick();
    },
    async stop() {
      stopped = true;
      stopping = true;
      clearTimeout(timer);
      await running;
    },
  };
}

export type OutboxRelay = ReturnType<typeof createOutboxRelay>;

const eventJob = (row: Pick<OutboxRow, 'id' | 'eventId' | 'type'>) => ({
  name: row.type,
  data: { outboxId: row.id, eventId: row.eventId, type: row.type },
  opts: { jobId: row.eventId },
});

/** A relayed event whose job has not finished in this long is looked for in Redis again. */
export const EVENT_JOB_GRACE_MS = 30_000;
const REQUEUE_PAGE = 2000;

/**
 * Finds relayed events whose job has not finished and queues them again under their job id,
 * once no job waits in the events queue.
 * A job still in Redis (waiting in a backlog, running, retrying, or failed for good) keeps
 * its id, so BullMQ ignores the add; a job Redis lost (a FLUSHALL, a restart without
 * persistence) is queued anew, and sends at most once (the email's own record). Walks the
 * rows a page per call from where the last call stopped, so a large backlog is covered.
 */
export function createEventRequeuer(deps: { db: Db; queues: Queues; graceMs?: number; pageSize?: number }) {
  let afterId = 0;
  return async function requeueLostEvents(): Promise<number> {
    // While jobs wait in the queue (a renewal wave's emails) nothing needs finding yet: what
    // Redis lost is found once the backlog has drained, without re-adding it page by page.
    // Running and retrying jobs do not count, so steady traffic never holds the sweep off.
    const counts = await withDeadline(deps.queues.events.getJobCounts('waiting', 'prioritized'), QUEUE_ADD_DEADLINE_MS, 'reading the events queue');
    if (Object.values(counts).some((n) => n > 0)) return 0;
    const rows = await listUnhandled(deps.db, deps.graceMs ?? EVENT_JOB_GRACE_MS, afterId, deps.pageSize ?? REQUEUE_PAGE);
    afterId = rows.length === (deps.pageSize ?? REQUEUE_PAGE) ? rows.at(-1)!.id : 0;
    if (rows.length) await withDeadline(deps.queues.events.addBulk(rows.map(eventJob)), QUEUE_ADD_DEADLINE_MS, 'queueing events again');
    return rows.length;
  };
}

/**
 * The accounts among `accountIds` with an enabled webhook endpoint: one query per relay pass,
 * so the rows of the many accounts without one (a renewal wave's) need no fan-out lookups.
 */
export async function accountsWithWebhooks(db: Db, accountIds: string[]): Promise<Set<string>> {
  if (accountIds.length === 0) return new Set();
  const rows = await db
    .selectDistinct({ accountId: webhookEndpoints.accountId })
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.status, 'enabled'), sql`${webhookEndpoints.accountId} = any(${sql.param([...new Set(accountIds)])}::text[])`));
  return new Set(rows.map((r) => r.accountId));
}
