import type { Db } from '../db/client.js';
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
    for (let n = await relayOnce(); n > 0; n = await relayOnce()) total += n;
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
      tick();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

export type OutboxRelay = ReturnType<typeof createOutboxRelay>;
