/**
 * Rejects when `promise` has not settled within `ms`. For calls that may wait on a dependency
 * that is away (a BullMQ queue waits for Redis before its first command) while the caller
 * holds something it must give back, such as a database transaction. What the call does later
 * must be safe: the queue adds it guards are keyed by job id.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** How long a queue add may take before the pass that made it gives up and tries again later. */
export const QUEUE_ADD_DEADLINE_MS = 5_000;
