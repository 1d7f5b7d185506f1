import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue, Worker } from 'bullmq';
import type { Logger } from '../lib/logger.js';

/** How often the workers are looked at, and how long a worker may take no job while its queue has jobs waiting. */
export const SUPERVISE_POLL_MS = 10_000;
export const STUCK_AFTER_MS = 60_000;

export interface SupervisedWorker {
  /** The BullMQ worker running now (a restart replaces it). */
  readonly current: Worker;
  /** Closes the worker running now (bounded by the caller). */
  close(): Promise<void>;
}

/**
 * Restarts a BullMQ worker that has stopped taking jobs without closing or saying so. Seen
 * on a Redis Cluster after a CLUSTERDOWN outage (BullMQ 6.7): one worker of four logged "Too
 * many Cluster redirections", kept no blocking fetch open once the cluster was back, and its
 * queue's jobs waited until the process was restarted. A worker counts as stuck when it has
 * started, finished or failed no job and reported no empty queue for `stuckMs` while its queue
 * had jobs waiting all along (and it is neither paused nor closing); it is then replaced by a
 * new worker on the same queue and the old one closed in the background (bounded, then
 * disconnected). A job the old one held is retried when its lock lapses and re-checks Postgres.
 */
export function superviseWorker(deps: {
  name: string;
  queue: Queue;
  /** Makes a worker (with its event handlers) on the queue; called again for each restart. */
  make: () => Worker;
  logger: Logger;
  stuckMs?: number;
  pollMs?: number;
}): SupervisedWorker & { check(): Promise<boolean>; stop(): void; restarts(): number } {
  const stuckMs = deps.stuckMs ?? STUCK_AFTER_MS;
  let current: Worker;
  let lastAlive = Date.now();
  /** When the queue was first seen with jobs waiting, since the worker was last alive. */
  let waitingSince: number | null = null;
  let restarts = 0;
  let stopped = false;
  let busy = false;

  const start = () => {
    const worker = deps.make();
    const alive = () => {
      if (worker === current) {
        lastAlive = Date.now();
        waitingSince = null;
      }
    };
    for (const event of ['active', 'completed', 'failed', 'drained', 'resumed'] as const) worker.on(event, alive);
    current = worker;
    lastAlive = Date.now();
    waitingSince = null;
  };
  start();

  async function check(): Promise<boolean> {
    if (stopped || busy) return false;
    busy = true;
    try {
      const worker = current;
      if (worker.closing || worker.isPaused()) {
        lastAlive = Date.now();
        waitingSince = null;
        return false;
      }
      const counts = await deps.queue.getJobCounts('waiting', 'prioritized');
      const now = Date.now();
      if ((counts.waiting ?? 0) + (counts.prioritized ?? 0) === 0) {
        waitingSince = null;
        return false;
      }
      waitingSince ??= now;
      if (now - lastAlive < stuckMs || now - waitingSince < Math.min(stuckMs, deps.pollMs ?? SUPERVISE_POLL_MS)) return false;
      if (stopped || worker !== current) return false;
      restarts++;
      deps.logger.error(
        { queue: deps.name, idleMs: now - lastAlive, waiting: counts },
        `${deps.name} worker took no job for ${Math.round((now - lastAlive) / 1000)} s while jobs waited (after a Redis outage?): starting a new one`,
      );
      start();
      void (async () => {
        const closed = await Promise.race([worker.close(true).then(() => true), sleep(5_000, false, { ref: false })]).catch(() => false);
        if (!closed) await Promise.race([worker.disconnect().catch(() => {}), sleep(2_000, undefined, { ref: false })]);
      })();
      return true;
    } catch {
      return false; // Redis away: nothing to judge by
    } finally {
      busy = false;
    }
  }

  const timer = setInterval(() => void check(), deps.pollMs ?? SUPERVISE_POLL_MS);
  timer.unref();
  return {
    get current() {
      return current;
    },
    close: () => current.close(),
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    restarts: () => restarts,
  };
}
