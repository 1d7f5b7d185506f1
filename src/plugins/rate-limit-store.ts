import type { Redis } from 'ioredis';

/** INCRBY a window's counter, starting the window if it is new; the count and what is left of it. */
const incrementBy = `
  local current = redis.call('INCRBY', KEYS[1], ARGV[1])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {current, ttl}
`;

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void;
type RateLimitBy = (key: string, by: number, windowMs: number, cb: (err: Error | null, r: [number, number]) => void) => void;

interface Window {
  /** The count Redis last reported for the window (all processes). */
  shared: number;
  /** Requests counted here and not yet added in Redis. */
  pending: number;
  endsAt: number;
  /** When Redis last told this process the shared count. */
  syncedAt: number;
  flushing: boolean;
}

/**
 * A Redis store for @fastify/rate-limit that does not cost a Redis round trip per request
 * on a budget far from exhausted. The first request of a window, and every request once the
 * count is within `margin` of the limit, is counted in Redis at once (exact, like the
 * plugin's own store); in between, requests are counted here and added to Redis every
 * `flushMs`. So the hot paths (tens of thousands a minute) pay one round trip per key and
 * `flushMs`, and a budget is still exact where it matters, at its end. Processes see each
 * other's far-from-limit requests up to `flushMs` late, and a count not refreshed from Redis
 * within two flushes is not trusted: the next request goes to Redis.
 */
export class CoalescingRedisStore {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly flushMs = 100,
  ) {
    if (!('rateLimitBy' in redis)) redis.defineCommand('rateLimitBy', { numberOfKeys: 1, lua: incrementBy });
  }

  private run(key: string, by: number, windowMs: number, cb: (err: Error | null, r: [number, number]) => void) {
    (this.redis as unknown as { rateLimitBy: RateLimitBy }).rateLimitBy(key, by, windowMs, cb);
  }

  /** The margin below the limit from which every request goes to Redis: 10%, at least 100. */
  static margin(max: number): number {
    return Math.max(100, Math.ceil(max / 10));
  }

  incr(key: string, cb: Callback, timeWindow: number, max: number): void {
    const fullKey = this.prefix + key;
    const now = Date.now();
    const window = this.windows.get(fullKey);
    // Local only while the shared count is recent (other processes count too) and far from the limit.
    const fresh = window && window.endsAt > now && now - window.syncedAt <= 2 * this.flushMs;
    if (window && fresh && window.shared + window.pending + 1 < max - CoalescingRedisStore.margin(max)) {
      window.pending++;
      this.scheduleFlush(fullKey, window, timeWindow);
      cb(null, { current: window.shared + window.pending, ttl: window.endsAt - now });
      return;
    }
    this.exact(fullKey, 1, timeWindow, cb);
  }

  child(): CoalescingRedisStore {
    return this;
  }

  private exact(fullKey: string, by: number, timeWindow: number, cb: Callback) {
    this.run(fullKey, by, timeWindow, (err, result) => {
      if (err) return cb(err);
      const [current, ttl] = result;
      const window = this.windows.get(fullKey);
      const pending = window && window.endsAt > Date.now() ? window.pending : 0;
      const now = Date.now();
      this.windows.set(fullKey, { shared: current, pending, endsAt: now + ttl, syncedAt: now, flushing: window?.flushing ?? false });
      this.evictEnded();
      cb(null, { current: current + pending, ttl });
    });
  }

  private scheduleFlush(fullKey: string, window: Window, timeWindow: number) {
    if (window.flushing) return;
    window.flushing = true;
    setTimeout(() => {
      const current = this.windows.get(fullKey);
      if (!current) return;
      const by = current.pending;
      current.pending = 0;
      current.flushing = false;
      if (by === 0) return;
      this.run(fullKey, by, timeWindow, (err, result) => {
        const now = this.windows.get(fullKey);
        if (!now) return;
        if (err) {
          now.pending += by; // counted again with the next flush
          this.scheduleFlush(fullKey, now, timeWindow);
        } else {
          now.shared = result[0];
          now.syncedAt = Date.now();
          now.endsAt = now.syncedAt + result[1];
        }
      });
    }, this.flushMs).unref();
  }

  private evictEnded() {
    if (this.windows.size < 10_000) return;
    const now = Date.now();
    for (const [key, w] of this.windows) if (w.endsAt <= now && w.pending === 0) this.windows.delete(key);
  }
}
