import type { RedisClient } from '../lib/redis.js';

/**
 * Leases up to ARGV[2] requests of a window's budget (ARGV[1]), never past it: at most an
 * eighth of what is left, at least one while anything is left. Answers {granted, count}.
 */
const lease = `
  local count = tonumber(redis.call('GET', KEYS[1]) or '0')
  local left = tonumber(ARGV[1]) - count
  if left <= 0 then return {0, count} end
  local grant = math.min(tonumber(ARGV[2]), math.max(1, math.floor(left / 8)))
  count = redis.call('INCRBY', KEYS[1], grant)
  if count == grant then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  return {grant, count}
`;

/** Gives back what a lease did not use, to the window it came from (gone with it when it ended). */
const giveBack = `
  if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECRBY', KEYS[1], ARGV[1]) end
  return 0
`;

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void;
type Scripts = {
  rateLimitLease(key: string, max: number, want: number, ttlMs: number): Promise<[number, number]>;
  rateLimitGiveBack(key: string, n: number): Promise<number>;
};

interface Window {
  /** The key in Redis: prefix, the limiter's key, the window's index. */
  key: string;
  /** The same without the prefix, for counting per process when Redis is away. */
  localKey: string;
  endsAt: number;
  /** Leased from Redis and not used yet. */
  tokens: number;
  /** The window's count in Redis when last asked (every process's leases). */
  shared: number;
  /** Used from the current lease: sizes the next one. */
  usedOfLease: number;
  leasing: boolean;
  waiting: Array<{ max: number; cb: Callback }>;
  giveBackTimer?: NodeJS.Timeout;
  exhausted: boolean;
}

export interface StoreHealth {
  /** True while Redis does not answer and each process counts on its own. */
  degraded: boolean;
}

/**
 * A Redis store for @fastify/rate-limit that is exact at the budget's end across processes
 * and costs no Redis round trip for most requests. Each process leases part of what is left
 * of a key's window (an eighth at most, sized to its own recent use) and admits requests
 * from its lease in memory; near the end leases shrink to one request, and a lease's unused
 * part goes back after `leaseMs`. Every admitted request was leased from the shared count,
 * so all processes together never admit more than the budget; a lease held by a process that
 * stopped needing it keeps others waiting at most `leaseMs`.
 *
 * Windows are aligned to the clock (minute n is the same key everywhere). When Redis does
 * not answer, the store counts per process (each process allows the whole budget) until
 * Redis answers again, and says so through `onDegraded`.
 */
export class LeasedRedisStore {
  private readonly windows = new Map<string, Window>();
  private readonly local = new Map<string, { endsAt: number; count: number }>();
  private degradedUntil = 0;
  private degraded = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly opts: { leaseMs?: number; timeoutMs?: number; retryMs?: number; onDegraded?: (degraded: boolean, err?: Error) => void } = {},
  ) {
    if (!('rateLimitLease' in redis)) {
      redis.defineCommand('rateLimitLease', { numberOfKeys: 1, lua: lease });
      redis.defineCommand('rateLimitGiveBack', { numberOfKeys: 1, lua: giveBack });
    }
  }

  private get scripts(): Scripts {
    return this.redis as unknown as Scripts;
  }

  get health(): StoreHealth {
    return { degraded: this.degraded };
  }

  incr(key: string, cb: Callback, timeWindow: number, max: number): void {
    const now = Date.now();
    const index = Math.floor(now / timeWindow);
    const endsAt = (index + 1) * timeWindow;
    const localKey = `${key}:${index}`;
    if (now < this.degradedUntil) return this.countLocally(localKey, endsAt, max, cb);

    const fullKey = this.prefix + localKey;
    let window = this.windows.get(key);
    if (!window || window.endsAt <= now || window.key !== fullKey) {
      if (window) clearTimeout(window.giveBackTimer);
      window = { key: fullKey, localKey, endsAt, tokens: 0, shared: 0, usedOfLease: 0, leasing: false, waiting: [], exhausted: false };
      this.windows.set(key, window);
      this.evictEnded(now);
    }
    if (window.tokens > 0) {
      window.tokens--;
      window.usedOfLease++;
      cb(null, { current: Math.min(max, window.shared - window.tokens), ttl: endsAt - now });
      return;
    }
    window.waiting.push({ max, cb });
    if (!window.leasing) this.lease(window, timeWindow);
  }

  child(): this {
    return this;
  }

  /** Asks Redis for a lease for everyone waiting; admits them from it, and asks again if it is short. */
  private lease(window: Window, timeWindow: number) {
    window.leasing = true;
    const max = window.waiting[0]!.max;
    const want = Math.max(window.waiting.length, 2 * window.usedOfLease, 1);
    this.withTimeout(this.scripts.rateLimitLease(window.key, max, want, timeWindow * 2)).then(
      ([granted, count]) => {
        window.leasing = false;
        this.recovered();
        window.shared = count;
        window.tokens += granted;
        window.usedOfLease = 0;
        window.exhausted = granted === 0;
        const ttl = Math.max(0, window.endsAt - Date.now());
        while (window.waiting.length > 0 && (window.tokens > 0 || window.exhausted)) {
          const waiter = window.waiting.shift()!;
          if (window.tokens > 0) {
            window.tokens--;
            window.usedOfLease++;
            waiter.cb(null, { current: Math.min(waiter.max, window.shared - window.tokens), ttl });
          } else {
            waiter.cb(null, { current: waiter.max + 1, ttl }); // the budget is spent, in every process
          }
        }
        if (window.waiting.length > 0) this.lease(window, timeWindow);
        else if (window.tokens > 0) this.scheduleGiveBack(window);
      },
      (err: Error) => {
        window.leasing = false;
        this.degrade(err);
        for (const w of window.waiting.splice(0)) this.countLocally(window.localKey, window.endsAt, w.max, w.cb);
      },
    );
  }

  private scheduleGiveBack(window: Window) {
    clearTimeout(window.giveBackTimer);
    window.giveBackTimer = setTimeout(() => {
      const unused = window.tokens;
      if (unused <= 0 || window.leasing) return;
      window.tokens = 0;
      window.usedOfLease = 0;
      this.scripts.rateLimitGiveBack(window.key, unused).catch(() => {}); // lost with Redis: the window only admits fewer
    }, this.opts.leaseMs ?? 250);
    window.giveBackTimer.unref();
  }

  private countLocally(key: string, endsAt: number, _max: number, cb: Callback) {
    const now = Date.now();
    let entry = this.local.get(key);
    if (!entry || entry.endsAt <= now) {
      entry = { endsAt, count: 0 };
      this.local.set(key, entry);
      if (this.local.size > 10_000) for (const [k, e] of this.local) if (e.endsAt <= now) this.local.delete(k);
    }
    entry.count++;
    cb(null, { current: entry.count, ttl: endsAt - now });
  }

  private degrade(err: Error) {
    this.degradedUntil = Date.now() + (this.opts.retryMs ?? 2000);
    if (!this.degraded) {
      this.degraded = true;
      this.opts.onDegraded?.(true, err);
    }
  }

  private recovered() {
    if (!this.degraded) return;
    this.degraded = false;
    this.local.clear();
    this.opts.onDegraded?.(false);
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('rate limit store: Redis did not answer in time')), this.opts.timeoutMs ?? 1000);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  private evictEnded(now: number) {
    if (this.windows.size < 10_000) return;
    for (const [key, w] of this.windows) {
      if (w.endsAt <= now && w.waiting.length === 0) {
        clearTimeout(w.giveBackTimer);
        this.windows.delete(key);
      }
    }
  }
}
