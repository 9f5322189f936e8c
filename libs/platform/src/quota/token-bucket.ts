/**
 * A token bucket: `ratePerSecond` tokens flow in continuously up to `burst`; a call takes one.
 * Time comes from the caller (milliseconds, any monotonic origin), so it is pure and testable.
 */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #at: number;

  /** Starts full: a tenant's first calls after a quiet spell may use the whole burst. */
  constructor(ratePerSecond: number, burst: number, nowMs: number) {
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new RangeError('ratePerSecond must be a positive number');
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError('burst must be at least 1');
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = nowMs;
  }

  get ratePerSecond(): number {
    return this.#rate;
  }

  get burst(): number {
    return this.#burst;
  }

  /** Tokens available at `nowMs` (fractional). */
  available(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  /** True when the bucket is full at `nowMs`: forgetting it then changes nothing. */
  isFull(nowMs: number): boolean {
    return this.available(nowMs) >= this.#burst;
  }

  /**
   * Takes one token: 0 when granted, otherwise the milliseconds until one is there (nothing taken).
   */
  take(nowMs: number): number {
    this.#refill(nowMs);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    // The epsilon keeps float noise (0.999… tokens) from adding a millisecond to the hint.
    return Math.max(1, Math.ceil(((1 - this.#tokens) / this.#rate) * 1000 - 1e-9));
  }

  /** Gives back a token taken by `take` (the call was refused for another reason). */
  refund(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }

  /** New limits keep the tokens already earned, capped at the new burst. */
  reconfigure(ratePerSecond: number, burst: number, nowMs: number): void {
    this.#refill(nowMs);
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new RangeError('ratePerSecond must be a positive number');
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError('burst must be at least 1');
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#tokens = Math.min(this.#tokens, burst);
  }

  #refill(nowMs: number): void {
    // A clock that steps back (tests, a suspended VM) earns nothing rather than a negative amount.
    const elapsed = Math.max(0, nowMs - this.#at);
    this.#at = Math.max(this.#at, nowMs);
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000);
  }
}
