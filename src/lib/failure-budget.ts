/**
 * Failures per client address in fixed windows (a minute by default), kept in memory by one
 * process. Only the current window is kept: when it ends every count goes at once. Within a
 * window at most `maxAddresses` are counted, the oldest going first, so a flood of addresses
 * cannot grow memory without bound.
 */
export class FailureBudget {
  private window = -1;
  private readonly counts = new Map<string, number>();
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;

  constructor(private readonly opts: { perWindow: number; now: () => number; windowMs?: number; maxAddresses?: number }) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxAddresses = opts.maxAddresses ?? 10_000;
    this.now = opts.now;
  }

  /** Whole seconds until the address may fail again (at least 1); 0 while within its budget. */
  retryAfter(address: string): number {
    const now = this.roll();
    if ((this.counts.get(address) ?? 0) < this.opts.perWindow) return 0;
    return Math.max(1, Math.ceil(((this.window + 1) * this.windowMs - now) / 1000));
  }

  fail(address: string): void {
    this.roll();
    const count = this.counts.get(address);
    if (count === undefined && this.counts.size >= this.maxAddresses) this.counts.delete(this.counts.keys().next().value!);
    this.counts.set(address, (count ?? 0) + 1);
  }

  get size(): number {
    return this.counts.size;
  }

  private roll(): number {
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    if (window !== this.window) {
      this.window = window;
      this.counts.clear();
    }
    return now;
  }
}
