import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { webhookEndpoints } from '../db/schema/index.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { claimUnrelayed, markRelayed, type OutboxRow } from '../modules/events/repo.js';
import type { Queues } from './registry.js';

const BATCH = 200;

/**
 * Moves committed outbox rows to the events queue. Rows are claimed with SKIP LOCKED and
 * marked in the same transaction as the enqueue: if the commit fails after the enqueue, the
 * next pass enqueues again under the same job id, and the handlers are idempotent.
 */
export function createOutboxRelay(deps: {
  db: Db;
  queues: Queues;
  clock: Clock;
  logger: Logger;
  pollMs: number;
  /** Work that must exist before an event counts as relayed (webhook deliveries), in the same transaction. */
  onRelay?: (tx: Db, rows: OutboxRow[]) => Promise<void>;
}) {
  const { db, queues, clock, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = true;
  let stopping = false;

  async function relayOnce(): Promise<number> {
    return db.transaction(async (tx) => {
      const rows = await claimUnrelayed(tx, BATCH);
      if (rows.length === 0) return 0;
      await queues.events.addBulk(
        rows.map((row) => ({
          name: row.type,
          data: { outboxId: row.id, eventId: row.eventId, type: row.type },
          opts: { jobId: row.eventId },
        })),
      );
      await deps.onRelay?.(tx, rows);
      await markRelayed(
        tx,
        rows.map((r) => r.id),
        clock.now(),
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

  function tick() {
    running = drain()
      .catch((err) => logger.error({ err }, 'outbox relay pass failed'))
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
