// How long a failed key waits before it is reconciled again: client-go's workqueue rate limiters
// (util/workqueue/default_rate_limiters.go), which kube-controller-manager's loops use through
// DefaultControllerRateLimiter. A key that keeps failing backs off exponentially instead of spinning,
// and all of a loop's retries together are held to an overall rate, so a fault that fails every key
// cannot turn into a storm of retries either.

/** ItemExponentialFailureRateLimiter: base * 2^(failures so far), capped; forgotten on success. */
export class ItemExponentialFailureRateLimiter {
  private readonly failures = new Map<string, number>();
  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 1000_000,
  ) {}
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity after a thousand failures: the cap still applies.
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** BucketRateLimiter: a token bucket (golang.org/x/time/rate) whose reservations wait for their token. */
export class BucketRateLimiter {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }
  when(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1; // reserved now, even if it has to wait for it
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
}

export interface RateLimiterOptions {
  /** Per-key back-off: first delay and cap (client-go: 5 ms, 1000 s). */
  baseMs?: number;
  maxMs?: number;
  /** Overall retries per second and burst (client-go: 10, 100). */
  qps?: number;
  burst?: number;
}

/** DefaultControllerRateLimiter: the longer of the per-key back-off and the overall bucket's wait. */
export class ControllerRateLimiter {
  private readonly item: ItemExponentialFailureRateLimiter;
  private readonly bucket: BucketRateLimiter;
  constructor(o: RateLimiterOptions = {}) {
    this.item = new ItemExponentialFailureRateLimiter(o.baseMs, o.maxMs);
    this.bucket = new BucketRateLimiter(o.qps, o.burst);
  }
  when(key: string): number {
    return Math.max(this.item.when(key), this.bucket.when());
  }
  forget(key: string): void {
    this.item.forget(key);
  }
  numRequeues(key: string): number {
    return this.item.numRequeues(key);
  }
}
