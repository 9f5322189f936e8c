import { ConcurrencyLimiter, type Release } from './concurrency-limiter.js';
import type { QuotaLimitsConfig, QuotasConfig, QuotasConfigInput } from './config.js';
import { quotasConfigSchema } from './config.js';
import { TokenBucket } from './token-bucket.js';

/** One tenant's limits; 0 turns a limit off. */
export interface QuotaLimits {
  /** Calls per second (token bucket). */
  readonly ratePerSecond: number;
  /** The bucket's size; 0: one second's worth of the rate (at least 1). */
  readonly burst: number;
  /** Calls in progress at once. */
  readonly maxConcurrency: number;
}

export const UNLIMITED: QuotaLimits = Object.freeze({ ratePerSecond: 0, burst: 0, maxConcurrency: 0 });

/**
 * Where a tenant's limits come from: the `quotas` configuration today, the tenant registry later.
 * Called on every admission, so it should answer from memory.
 */
export type QuotaLimitsSource = (tenant: string) => QuotaLimits;

/** `default` merged with the tenant's entry, key by key. */
export function limitsFromConfig(config: QuotasConfigInput | QuotasConfig): QuotaLimitsSource {
  const parsed = quotasConfigSchema.parse(config);
  const base: QuotaLimitsConfig = parsed.default;
  const merged = new Map<string, QuotaLimits>();
  for (const [tenant, own] of Object.entries(parsed.tenants)) {
    merged.set(tenant, Object.freeze({ ...base, ...Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined)) }) as QuotaLimits);
  }
  const fallback = Object.freeze({ ...base });
  return (tenant) => merged.get(tenant) ?? fallback;
}

export type QuotaLimitKind = 'rate' | 'concurrency';

export type Admission =
  | { readonly ok: true; readonly release: Release }
  | {
      readonly ok: false;
      readonly limit: QuotaLimitKind;
      /** For the caller: which limit, its figures, when to come back. */
      readonly message: string;
      readonly retryAfterMs: number;
      /** The message with another retry hint (a refusal answered later, after a hold, says less time). */
      readonly messageWith: (retryAfterMs: number) => string;
    };

export interface TenantQuotasOptions {
  limits: QuotaLimitsSource;
  /** Clock in ms (tests inject one); `performance.now` by default. */
  now?: (() => number) | undefined;
  /** Tenants whose counters are kept at most (default 10 000); idle ones are forgotten first. */
  maxTrackedTenants?: number | undefined;
  /**
   * The retry hint of a concurrency refusal. Nothing says when a call in progress ends, so it is
   * a guess: short, since a slot frees as soon as any call of the tenant finishes.
   */
  concurrencyRetryAfterMs?: number | undefined;
  /** How often tenants with nothing to remember are dropped (default 60 s). */
  sweepIntervalMs?: number | undefined;
}

export interface TenantQuotasStats {
  /** Tenants whose counters are held now. */
  tracked: number;
  admitted: number;
  refusedRate: number;
  refusedConcurrency: number;
  /** Admitted calls not yet released, over every tenant. */
  inFlight: number;
}

interface TenantState {
  limits: QuotaLimits;
  bucket: TokenBucket | undefined;
  readonly limiter: ConcurrencyLimiter;
}

const NOOP: Release = () => undefined;

function burstOf(limits: QuotaLimits): number {
  return limits.burst > 0 ? limits.burst : Math.max(1, Math.ceil(limits.ratePerSecond));
}

function isUnlimited(limits: QuotaLimits): boolean {
  return !(limits.ratePerSecond > 0) && !(limits.maxConcurrency > 0);
}

function sameLimits(a: QuotaLimits, b: QuotaLimits): boolean {
  return a === b || (a.ratePerSecond === b.ratePerSecond && a.burst === b.burst && a.maxConcurrency === b.maxConcurrency);
}

const perSecond = (rate: number) => (Number.isInteger(rate) ? String(rate) : rate.toFixed(2).replace(/\.?0+$/, ''));

/**
 * Per-tenant quotas: a request rate (token bucket) and a number of calls in progress. Memory is
 * bounded: tenants without limits are not tracked at all, a tenant whose bucket is full and that has
 * nothing in progress is forgotten by a periodic sweep (a new bucket would start full, so nothing
 * changes), and beyond `maxTrackedTenants` the least recently seen idle tenants are forgotten first.
 */
export class TenantQuotas {
  readonly #limits: QuotaLimitsSource;
  readonly #now: () => number;
  readonly #maxTracked: number;
  readonly #concurrencyRetryAfterMs: number;
  readonly #sweepIntervalMs: number;
  // Insertion order is recency order: a tenant is re-inserted on each admission.
  readonly #tenants = new Map<string, TenantState>();
  #lastSweep: number;
  #inFlight = 0;
  readonly #counters = { admitted: 0, refusedRate: 0, refusedConcurrency: 0 };

  constructor(options: TenantQuotasOptions) {
    this.#limits = options.limits;
    this.#now = options.now ?? (() => performance.now());
    this.#maxTracked = options.maxTrackedTenants ?? 10_000;
    this.#concurrencyRetryAfterMs = options.concurrencyRetryAfterMs ?? 50;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    if (!(this.#maxTracked >= 1)) throw new RangeError('maxTrackedTenants must be at least 1');
    this.#lastSweep = this.#now();
  }

  /** From the `quotas` configuration section. */
  static fromConfig(config: QuotasConfigInput | QuotasConfig, options: Omit<TenantQuotasOptions, 'limits'> = {}): TenantQuotas {
    const parsed = quotasConfigSchema.parse(config);
    return new TenantQuotas({ maxTrackedTenants: parsed.maxTrackedTenants, ...options, limits: limitsFromConfig(parsed) });
  }

  /**
   * Admits one call of `tenant` or says which limit refuses it. An admitted call holds a
   * concurrency slot until `release` is called (once is enough; more are ignored).
   */
  admit(tenant: string): Admission {
    const now = this.#now();
    if (now - this.#lastSweep >= this.#sweepIntervalMs) this.#sweep(now);
    const limits = this.#limits(tenant);
    let state = this.#tenants.get(tenant);
    if (state === undefined && isUnlimited(limits)) {
      this.#counters.admitted++;
      return { ok: true, release: NOOP };
    }
    if (state === undefined) {
      state = { limits, bucket: undefined, limiter: new ConcurrencyLimiter(limits.maxConcurrency) };
      this.#sync(state, limits, now, true);
    } else {
      this.#tenants.delete(tenant);
      if (!sameLimits(state.limits, limits)) this.#sync(state, limits, now, false);
    }
    this.#tenants.set(tenant, state);
    if (this.#tenants.size > this.#maxTracked) this.#evictOldest();

    const slot = state.limiter.tryAcquire();
    if (slot === undefined) {
      this.#counters.refusedConcurrency++;
      const max = limits.maxConcurrency;
      const messageWith = (ms: number) => `tenant "${tenant}" is at its concurrency quota of ${max} calls in progress: retry when one of them has finished (in about ${ms} ms)`;
      return { ok: false, limit: 'concurrency', message: messageWith(this.#concurrencyRetryAfterMs), retryAfterMs: this.#concurrencyRetryAfterMs, messageWith };
    }
    const wait = state.bucket?.take(now) ?? 0;
    if (wait > 0) {
      slot();
      this.#counters.refusedRate++;
      const figures = `tenant "${tenant}" is over its rate quota of ${perSecond(limits.ratePerSecond)} calls/s (burst ${burstOf(limits)})`;
      const messageWith = (ms: number) => `${figures}: retry in ${ms} ms`;
      return { ok: false, limit: 'rate', message: messageWith(wait), retryAfterMs: wait, messageWith };
    }
    this.#counters.admitted++;
    this.#inFlight++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
        slot();
      },
    };
  }

  /** Calls of `tenant` admitted and not yet released (0 for a tenant not tracked). */
  inFlight(tenant: string): number {
    return this.#tenants.get(tenant)?.limiter.inFlight ?? 0;
  }

  stats(): TenantQuotasStats {
    return { tracked: this.#tenants.size, ...this.#counters, inFlight: this.#inFlight };
  }

  #sync(state: TenantState, limits: QuotaLimits, now: number, fresh: boolean): void {
    state.limits = limits;
    state.limiter.max = limits.maxConcurrency;
    if (!(limits.ratePerSecond > 0)) state.bucket = undefined;
    else if (state.bucket === undefined || fresh) state.bucket = new TokenBucket(limits.ratePerSecond, burstOf(limits), now);
    else state.bucket.reconfigure(limits.ratePerSecond, burstOf(limits), now);
  }

  /** Forgets tenants with nothing in progress whose bucket is full: a fresh state would be the same. */
  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const [tenant, state] of this.#tenants) {
      if (state.limiter.inFlight === 0 && (state.bucket === undefined || state.bucket.isFull(now))) this.#tenants.delete(tenant);
    }
  }

  /** Over the bound: forgets the least recently seen tenants with nothing in progress. */
  #evictOldest(): void {
    for (const [tenant, state] of this.#tenants) {
      if (this.#tenants.size <= this.#maxTracked) return;
      if (state.limiter.inFlight === 0) this.#tenants.delete(tenant);
    }
  }
}
