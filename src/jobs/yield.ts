import type { Queue, Worker } from 'bullmq';

/** How often the renewals queue is looked at, and the longest emails wait behind a wave. */
export const YIELD_POLL_MS = 1_000;
export const YIELD_MAX_PAUSE_MS = 120_000;

/**
 * Emails yield to a renewal wave: while renewal jobs wait or run, this process's
 * email worker pauses (sends under way finish), so the wave's charges get the CPU, and the
 * wave's receipts (each renders its invoice PDF) go out right after it. Never longer than
 * YIELD_MAX_PAUSE_MS at a stretch, then a quarter of that running, so steady renewal traffic
 * cannot starve emails; and when the queue cannot be read (Redis away), emails run.
 */
export function yieldToRenewals(deps: { renewals: Queue; emails: Pick<Worker, 'pause' | 'resume'>; pollMs?: number; maxPauseMs?: number }) {
  const pollMs = deps.pollMs ?? YIELD_POLL_MS;
  const maxPauseMs = deps.maxPauseMs ?? YIELD_MAX_PAUSE_MS;
  let pausedSince: number | null = null;
  /** After a pause ran its longest, emails run at least a quarter of that before pausing again. */
  let runUntil = 0;
  let stopped = false;
  let busy = false;

  const resume = () => {
    if (pausedSince !== null) deps.emails.resume();
    pausedSince = null;
  };

  async function check(): Promise<void> {
    if (busy || stopped) return;
    busy = true;
    try {
      const counts = await deps.renewals.getJobCounts('waiting', 'active', 'prioritized');
      const waveRunning = (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0) > 0;
      const now = Date.now();
      if (waveRunning && pausedSince === null && now >= runUntil) {
        pausedSince = now;
        await deps.emails.pause(true);
      } else if (pausedSince !== null && now - pausedSince >= maxPauseMs) {
        resume();
        runUntil = now + maxPauseMs / 4;
      } else if (!waveRunning) {
        resume();
      }
    } catch {
      resume();
    } finally {
      busy = false;
    }
  }

  const timer = setInterval(() => void check(), pollMs);
  timer.unref();
  return {
    check,
    get paused() {
      return pausedSince !== null;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
      resume();
    },
  };
}
