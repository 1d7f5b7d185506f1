import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue, Worker } from 'bullmq';
import type { Logger } from '../lib/logger.js';

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
  queue: Queue;
  /** Makes a worker (with its event handlers) on the queue; called again for each restart. */
  make: () => Worker;
  logger: Logger;
  /** WORKER_STUCK_MS. */
  stuckMs: number;
  /** How often to look: by default every 10 s, or twice per stuckMs when that is shorter. */
  pollMs?: number;
}) {
  const { stuckMs, queue } = deps;
  const pollMs = deps.pollMs ?? Math.min(10_000, stuckMs / 2);
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
      const counts = await queue.getJobCounts('waiting', 'prioritized');
      const now = Date.now();
      if ((counts.waiting ?? 0) + (counts.prioritized ?? 0) === 0) {
        waitingSince = null;
        return false;
      }
      waitingSince ??= now;
      if (now - lastAlive < stuckMs || now - waitingSince < Math.min(stuckMs, pollMs)) return false;
      if (stopped || worker !== current) return false;
      restarts++;
      deps.logger.error(
        { queue: queue.name, idleMs: now - lastAlive, waiting: counts },
        `${queue.name} worker took no job for ${Math.round((now - lastAlive) / 1000)} s while jobs waited (after a Redis outage?): starting a new one`,
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

  const timer = setInterval(() => void check(), pollMs);
  timer.unref();
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  return {
    /** The BullMQ worker running now (a restart replaces it). */
    get current() {
      return current;
    },
    /** Stops supervising and closes the worker running now (bounded by the caller). */
    close: () => {
      stop();
      return current.close();
    },
    check,
    stop,
    restarts: () => restarts,
  };
}
