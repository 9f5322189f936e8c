/**
 * A consecutive-failure breaker for the personal stage. While the personal model keeps failing or
 * timing out, every Predict would otherwise spend its personal budget waiting for an answer that
 * will not come; with the circuit open the stage is skipped (fallback CIRCUIT_OPEN) until a single
 * trial call after `openMs` shows whether it has recovered.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #now: () => number;
  #failures = 0;
  #openedAt: number | undefined;
  #trialInFlight = false;

  /** `threshold` 0 disables the breaker (it never opens). */
  constructor(options: { threshold: number; openMs: number; now?: () => number }) {
    this.#threshold = options.threshold;
    this.#openMs = options.openMs;
    this.#now = options.now ?? (() => Date.now());
  }

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.#openedAt === undefined) return 'closed';
    return this.#now() - this.#openedAt >= this.#openMs ? 'half-open' : 'open';
  }

  /**
   * Whether a call may go out now. In half-open state only one trial call is let through; the
   * others are skipped until it reports back.
   */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#trialInFlight) return false;
    this.#trialInFlight = true;
    return true;
  }

  /** Milliseconds until a trial call is allowed (0 when closed or half-open). */
  retryInMs(): number {
    if (this.#openedAt === undefined) return 0;
    return Math.max(0, this.#openMs - (this.#now() - this.#openedAt));
  }

  success(): void {
    this.#failures = 0;
    this.#openedAt = undefined;
    this.#trialInFlight = false;
  }

  failure(): void {
    this.#trialInFlight = false;
    if (this.#threshold === 0) return;
    this.#failures++;
    if (this.#openedAt !== undefined || this.#failures >= this.#threshold) this.#openedAt = this.#now();
  }
}
