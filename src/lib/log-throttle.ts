/**
 * A failure that repeats every pass while a dependency is away (a relay pass, a worker's
 * reconnect) is logged when it starts, then at most once per `everyMs` with how many were
 * left out, and once more when it stops: an outage reads as a few lines, not hundreds.
 */
export function throttledFailures(everyMs = 30_000) {
  const state = new Map<string, { lastAt: number; suppressed: number }>();
  return {
    /** Calls `log(suppressed)` if this failure is due a line; counts it otherwise. */
    failed(key: string, log: (suppressed: number) => void): void {
      const now = Date.now();
      const s = state.get(key);
      if (s && now - s.lastAt < everyMs) {
        s.suppressed++;
        return;
      }
      log(s?.suppressed ?? 0);
      state.set(key, { lastAt: now, suppressed: 0 });
    },
    /** Calls `log()` once when a failing key succeeds again. */
    recovered(key: string, log: () => void): void {
      if (state.delete(key)) log();
    },
  };
}
