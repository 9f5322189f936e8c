/**
 * Users known to have no personal model, per (tenant, pseudonym). Most users of a tenant never
 * give feedback, and for them Score always answers NO_MODEL: remembering that answer lets Predict
 * skip the personal features and the Score call, which would only say so again.
 *
 * An entry is a promise that can go stale (the user's first model gets written), so everything
 * here bounds how long a stale entry can live:
 * - an entry lives `ttlMs` from the Score answer that set it (a hit does not extend it);
 * - `forget` drops a user (a PersonalModelUpdated event, feedback recorded by this process) and
 *   `clear` drops everyone (events may have been missed);
 * - an answer asked for before an invalidation of its user, or before a `clear`, is not cached
 *   (`ticket` before the Score call, `remember` after it): the Score may have read the store just
 *   before the model was written, and its answer may arrive just after the event that announced it;
 * - for `holdMs` after an invalidation a user's NO_MODEL answers are not cached at all: another
 *   personal-model replica may apply the same announcement a little later than this process and
 *   still answer from its own stale "no model" entry meanwhile; a Score started more than `holdMs`
 *   before its answer arrives is not cached either (its invalidations may have been pruned).
 *
 * Bounded in entries (least recently used dropped first) and in remembered invalidations (beyond
 * `maxEntries` the oldest is dropped and every ticket older than it refused instead).
 */
export interface NoModelCacheOptions {
  /** Users held; the least recently used is dropped beyond it (≥ 1). */
  readonly maxEntries: number;
  /** How long a NO_MODEL answer is trusted (ms, > 0). */
  readonly ttlMs: number;
  /** How long after an invalidation a user's NO_MODEL answers are not cached (ms, > 0). */
  readonly holdMs: number;
  /** Monotonic clock in milliseconds (tests). */
  readonly now?: (() => number) | undefined;
}

/** Taken before a Score call; its NO_MODEL answers are cached only if nothing invalidated them since. */
export interface NoModelTicket {
  readonly seq: number;
  readonly at: number;
}

export interface NoModelCacheStats {
  readonly entries: number;
  /** Lookups answered "no model" (the personal stage skipped). */
  readonly hits: number;
  /** NO_MODEL answers stored. */
  readonly remembered: number;
  /** NO_MODEL answers not stored because an invalidation or a clear may have overtaken them. */
  readonly refused: number;
  /** Users dropped by `forget` (whether held or not). */
  readonly invalidations: number;
  readonly clears: number;
  /** Entries dropped for room (least recently used). */
  readonly evictions: number;
}

interface Invalidation {
  readonly seq: number;
  readonly at: number;
}

/** Tenant ids never contain '/', so this cannot collide. */
const keyOf = (tenant: string, userPseudonym: string) => `${tenant}/${userPseudonym}`;

export class NoModelCache {
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #holdMs: number;
  readonly #now: () => number;
  /** key → expiry; Map order is recency (a hit moves its entry to the end). */
  readonly #entries = new Map<string, number>();
  /** key → its latest invalidation, oldest first. */
  readonly #invalidated = new Map<string, Invalidation>();
  #seq = 0;
  /** Tickets below this are refused (a clear, or an invalidation forgotten for room). */
  #floor = 0;
  #stats = { hits: 0, remembered: 0, refused: 0, invalidations: 0, clears: 0, evictions: 0 };

  constructor(options: NoModelCacheOptions) {
    for (const [name, value] of [
      ['maxEntries', options.maxEntries],
      ['ttlMs', options.ttlMs],
      ['holdMs', options.holdMs],
    ] as const) {
      if (!Number.isInteger(value) || value <= 0) throw new RangeError(`NoModelCache ${name} must be a whole number > 0, got ${value}`);
    }
    this.#maxEntries = options.maxEntries;
    this.#ttlMs = options.ttlMs;
    this.#holdMs = options.holdMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Whether the user is known to have no model right now. */
  has(tenant: string, userPseudonym: string): boolean {
    const key = keyOf(tenant, userPseudonym);
    const expiresAt = this.#entries.get(key);
    if (expiresAt === undefined) return false;
    this.#entries.delete(key);
    if (expiresAt <= this.#now()) return false;
    this.#entries.set(key, expiresAt);
    this.#stats.hits++;
    return true;
  }

  /** Take before asking Score; hand to `remember` with its NO_MODEL answers. */
  ticket(): NoModelTicket {
    return { seq: this.#seq, at: this.#now() };
  }

  /**
   * Stores a NO_MODEL answer of a Score call asked for under `ticket`, unless the user was
   * invalidated since (or recently), the cache cleared since, or the call took `holdMs` or longer.
   * Returns whether it was stored.
   */
  remember(tenant: string, userPseudonym: string, ticket: NoModelTicket): boolean {
    const now = this.#now();
    const key = keyOf(tenant, userPseudonym);
    this.#pruneInvalidations(now);
    const invalidation = this.#invalidated.get(key);
    if (ticket.seq < this.#floor || now - ticket.at >= this.#holdMs || (invalidation && (invalidation.seq > ticket.seq || now - invalidation.at < this.#holdMs))) {
      this.#stats.refused++;
      return false;
    }
    this.#entries.delete(key);
    this.#entries.set(key, now + this.#ttlMs);
    this.#stats.remembered++;
    while (this.#entries.size > this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
      this.#stats.evictions++;
    }
    return true;
  }

  /** Drops a user: a model may exist now (or may soon: feedback was recorded). */
  forget(tenant: string, userPseudonym: string): void {
    const now = this.#now();
    const key = keyOf(tenant, userPseudonym);
    this.#entries.delete(key);
    this.#invalidated.delete(key);
    this.#invalidated.set(key, { seq: ++this.#seq, at: now });
    this.#stats.invalidations++;
    this.#pruneInvalidations(now);
    while (this.#invalidated.size > this.#maxEntries) {
      const [oldest, { seq }] = this.#invalidated.entries().next().value!;
      this.#invalidated.delete(oldest);
      // Whatever was asked for before it can no longer be checked against it: refuse all of that.
      this.#floor = Math.max(this.#floor, seq);
    }
  }

  /** Drops everyone, and refuses the answers of calls asked for before. */
  clear(): void {
    this.#floor = ++this.#seq;
    this.#entries.clear();
    this.#invalidated.clear();
    this.#stats.clears++;
  }

  stats(): NoModelCacheStats {
    return { entries: this.#entries.size, ...this.#stats };
  }

  /** An invalidation older than `holdMs` refuses nothing a younger ticket asks for; older tickets are refused by age. */
  #pruneInvalidations(now: number): void {
    for (const [key, { at }] of this.#invalidated) {
      if (now - at < this.#holdMs) break;
      this.#invalidated.delete(key);
    }
  }
}
