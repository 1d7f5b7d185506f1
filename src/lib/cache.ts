/**
 * A read-through cache that is told about changes (see db/change-feed.ts) and never keeps
 * a value that a change may have overtaken:
 * - a load that was running when its key was invalidated (or the cache cleared) answers its
 *   caller but is not stored, since it may have read the rows from before the change;
 * - a get after an invalidation never joins a load that started before it;
 * - while `trusted()` is false (no change feed) every get loads and nothing is stored.
 * Bounded: past `max` entries the oldest goes; `ttlMs` bounds any entry's age as a last
 * line of defence, not as the means of freshness.
 */
export class InvalidatedCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  private readonly loading = new Map<string, { token: object; promise: Promise<V | null> }>();
  private epoch = 0;

  constructor(private readonly opts: { max: number; ttlMs: number; trusted: () => boolean }) {}

  /** The cached value, or the loader's (stored when `keep` allows it); null is never stored. */
  get(key: string, load: () => Promise<V | null>, keep: (value: V) => boolean = () => true): Promise<V | null> {
    if (!this.opts.trusted()) return load();
    const hit = this.entries.get(key);
    if (hit) {
      if (hit.expires > Date.now()) return Promise.resolve(hit.value);
      this.entries.delete(key);
    }
    const pending = this.loading.get(key);
    if (pending) return pending.promise;

    const token = {};
    const epoch = this.epoch;
    const finish = () => {
      const current = this.loading.get(key)?.token === token;
      if (current) this.loading.delete(key);
      return current && epoch === this.epoch && this.opts.trusted();
    };
    const promise = load().then(
      (value) => {
        if (finish() && value !== null && keep(value)) this.set(key, value);
        return value;
      },
      (err: unknown) => {
        finish();
        throw err;
      },
    );
    this.loading.set(key, { token, promise });
    return promise;
  }

  peek(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  invalidate(key: string): void {
    this.entries.delete(key);
    this.loading.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.loading.clear();
    this.epoch++;
  }

  get size(): number {
    return this.entries.size;
  }

  private set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: Date.now() + this.opts.ttlMs });
    if (this.entries.size > this.opts.max) this.entries.delete(this.entries.keys().next().value!);
  }
}
