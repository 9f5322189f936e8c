import { ALL_CONSENT_CHANGED, MalformedEventError, consentChangedSubject, decodeEvent, type EventBus, type LiveEvent, type Subscription } from '@aimass/events';
import { consentStateFromProto, purposeFromProto, type ConsentPurpose, type ConsentStateName } from './purposes.js';

/** One purpose's current decision as the privacy service reports it (GetConsent). */
export interface ConsentDecisionView {
  readonly purpose: ConsentPurpose;
  readonly state: ConsentStateName;
  /** Sequence of the record in the user's history (`record_sequence` of its ConsentChanged); 0 when the tenant default applies. */
  readonly sequence: number;
  /** True when the user never decided and the tenant's default applies. */
  readonly isDefault: boolean;
}

/**
 * Reads a user's current decisions, every purpose, from the privacy service (GetConsent).
 * `PrivacyConsentLookup` (this package) is the one over gRPC.
 */
export type ConsentLookup = (tenant: string, userPseudonym: string) => Promise<readonly ConsentDecisionView[]>;

/** The answer to "may this user's data be used for this purpose?" */
export interface ConsentCheck {
  readonly allowed: boolean;
  /** The decision the answer rests on; undefined when the privacy service could not be asked. */
  readonly state: ConsentStateName | undefined;
  /** The tenant's default, not a decision of the user. */
  readonly isDefault: boolean;
  /**
   * `cache`: answered from memory; `lookup`: read from the privacy service during this check;
   * `unavailable`: the privacy service could not be read, so the use is refused (fail closed).
   */
  readonly from: 'cache' | 'lookup' | 'unavailable';
}

export interface ConsentCacheOptions {
  /** Where ConsentChanged events arrive (a live subscription: no consumer, no acknowledgements). */
  readonly bus: EventBus;
  readonly lookup: ConsentLookup;
  /**
   * How long a looked-up user is answered from memory before the privacy service is read again.
   * This bounds how long a withdrawal whose event was lost without a reconnect goes unnoticed.
   */
  readonly ttlMs?: number | undefined;
  /** How long a failed lookup is remembered (and the use refused) before the next check tries again. */
  readonly failureTtlMs?: number | undefined;
  /** Users held; the oldest entry is dropped beyond it. */
  readonly maxEntries?: number | undefined;
  /** Told about events that cannot be read and lookups that failed (the cache carries on). */
  readonly onError?: ((error: unknown, event?: LiveEvent) => void) | undefined;
  /** Clock in milliseconds (tests). */
  readonly now?: (() => number) | undefined;
}

export interface ConsentCacheStats {
  readonly entries: number;
  readonly hits: number;
  readonly lookups: number;
  readonly lookupFailures: number;
  readonly events: number;
  readonly gaps: number;
}

export const DEFAULT_CONSENT_TTL_MS = 30_000;
export const DEFAULT_CONSENT_FAILURE_TTL_MS = 1_000;
export const DEFAULT_CONSENT_MAX_ENTRIES = 100_000;

interface Held {
  readonly state: ConsentStateName;
  readonly sequence: number;
  readonly isDefault: boolean;
}

interface Entry {
  /** Undefined: the lookup failed. */
  readonly purposes: Map<ConsentPurpose, Held> | undefined;
  readonly expiresAt: number;
}

interface Loading {
  readonly promise: Promise<Entry>;
  /** Events that arrived while the lookup was in flight, merged into its answer by sequence. */
  readonly updates: Map<ConsentPurpose, Held>;
}

/** Keeps `held` or takes `next`: a record with a higher sequence is a later decision. */
function merge(into: Map<ConsentPurpose, Held>, purpose: ConsentPurpose, next: Held): void {
  const held = into.get(purpose);
  if (!held || next.sequence > held.sequence) into.set(purpose, next);
}

function answer(held: Held | undefined, from: ConsentCheck['from']): ConsentCheck {
  // The privacy service answers every purpose; one it did not name was never granted.
  if (!held) return { allowed: false, state: 'denied', isDefault: true, from };
  return { allowed: held.state === 'granted', state: held.state, isDefault: held.isDefault, from };
}

const UNAVAILABLE: ConsentCheck = Object.freeze({ allowed: false, state: undefined, isDefault: false, from: 'unavailable' as const });

/**
 * The local consent check of a service that enforces consent (fusion, personal-model, updater):
 * a hit costs a map lookup, no network hop.
 *
 * It is fed two ways. A live subscription to every ConsentChanged (`aimass.*.consent.changed.*`)
 * updates the users it holds at once; a user it does not hold (or no longer holds: TTL, eviction,
 * gap) is read through the lookup (GetConsent) on the first check, which also brings in the
 * tenant's default for a user who never decided. Decisions are ordered by their record sequence
 * in the user's history, so an event overtaken by a lookup, a repeated publish, or a lookup that
 * read the store just before a change cannot put an older decision back.
 *
 * How soon a withdrawal takes effect here:
 * - normally within the event's delivery time: the privacy service publishes ConsentChanged before
 *   SetConsent answers, and NATS routes the publish to every live subscription as it stores it;
 * - after a lost connection to NATS, at once on reconnect: `onGap` drops everything held, so
 *   the next check reads the privacy service;
 * - if an event is lost without the connection dropping (live delivery is at most once), within
 *   `ttlMs` (30 s by default) plus one lookup.
 *
 * When the privacy service cannot be read the check refuses the use (fail closed) and remembers
 * that for `failureTtlMs`, so a hot path does not wait on an unreachable service on every call.
 */
export class ConsentCache {
  readonly #lookup: ConsentLookup;
  readonly #ttlMs: number;
  readonly #failureTtlMs: number;
  readonly #maxEntries: number;
  readonly #onError: ((error: unknown, event?: LiveEvent) => void) | undefined;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, Loading>();
  /** Bumped by a gap: a lookup started before it must not be kept. */
  #generation = 0;
  #subscription: Subscription | undefined;
  #stats = { hits: 0, lookups: 0, lookupFailures: 0, events: 0, gaps: 0 };

  private constructor(options: ConsentCacheOptions) {
    this.#lookup = options.lookup;
    this.#ttlMs = options.ttlMs ?? DEFAULT_CONSENT_TTL_MS;
    this.#failureTtlMs = options.failureTtlMs ?? DEFAULT_CONSENT_FAILURE_TTL_MS;
    this.#maxEntries = options.maxEntries ?? DEFAULT_CONSENT_MAX_ENTRIES;
    this.#onError = options.onError;
    this.#now = options.now ?? Date.now;
    for (const [name, value] of [
      ['ttlMs', this.#ttlMs],
      ['failureTtlMs', this.#failureTtlMs],
      ['maxEntries', this.#maxEntries],
    ] as const) {
      if (!Number.isInteger(value) || value <= 0) throw new RangeError(`ConsentCache ${name} must be a whole number > 0, got ${value}`);
    }
  }

  /** Subscribes to every ConsentChanged and resolves once the subscription is in place. */
  static async start(options: ConsentCacheOptions): Promise<ConsentCache> {
    const cache = new ConsentCache(options);
    cache.#subscription = await options.bus.subscribe(ALL_CONSENT_CHANGED, (event) => cache.#onEvent(event), {
      onGap: () => cache.clear(),
      onError: (err, event) => cache.#onError?.(err, event),
    });
    return cache;
  }

  /** The answer without any network hop, or undefined when the user is not held (or expired). */
  cached(tenant: string, userPseudonym: string, purpose: ConsentPurpose): ConsentCheck | undefined {
    const entry = this.#entries.get(key(tenant, userPseudonym));
    if (!entry || entry.expiresAt <= this.#now()) return undefined;
    this.#stats.hits++;
    return entry.purposes ? answer(entry.purposes.get(purpose), 'cache') : UNAVAILABLE;
  }

  /** The answer from memory, or after one lookup when the user is not held. Never rejects. */
  async check(tenant: string, userPseudonym: string, purpose: ConsentPurpose): Promise<ConsentCheck> {
    const hit = this.cached(tenant, userPseudonym, purpose);
    if (hit) return hit;
    const entry = await this.#load(tenant, userPseudonym);
    return entry.purposes ? answer(entry.purposes.get(purpose), 'lookup') : UNAVAILABLE;
  }

  /** True only when the user (or the tenant's default) grants the purpose. */
  async allowed(tenant: string, userPseudonym: string, purpose: ConsentPurpose): Promise<boolean> {
    return (await this.check(tenant, userPseudonym, purpose)).allowed;
  }

  /** Forgets one user: the next check reads the privacy service. */
  forget(tenant: string, userPseudonym: string): void {
    this.#entries.delete(key(tenant, userPseudonym));
  }

  /** Forgets every user of a tenant (its deletion): a later check of one reads the privacy service. */
  forgetTenant(tenant: string): void {
    const prefix = key(tenant, '');
    for (const k of [...this.#entries.keys()]) if (k.startsWith(prefix)) this.#entries.delete(k);
  }

  /** Forgets everything (what `onGap` does: events may have been missed). */
  clear(): void {
    this.#generation++;
    this.#entries.clear();
    this.#stats.gaps++;
  }

  stats(): ConsentCacheStats {
    return { entries: this.#entries.size, ...this.#stats };
  }

  /** Unsubscribes and forgets everything. */
  async close(): Promise<void> {
    const subscription = this.#subscription;
    this.#subscription = undefined;
    this.#entries.clear();
    await subscription?.close();
  }

  #load(tenant: string, userPseudonym: string): Promise<Entry> {
    const k = key(tenant, userPseudonym);
    const running = this.#loading.get(k);
    if (running) return running.promise;
    const generation = this.#generation;
    const updates = new Map<ConsentPurpose, Held>();
    this.#stats.lookups++;
    const promise = Promise.resolve()
      .then(() => this.#lookup(tenant, userPseudonym))
      .then(
        (decisions): Entry => {
          const purposes = new Map<ConsentPurpose, Held>();
          for (const d of decisions) merge(purposes, d.purpose, { state: d.state, sequence: d.sequence, isDefault: d.isDefault });
          for (const [purpose, held] of updates) merge(purposes, purpose, held);
          return { purposes, expiresAt: this.#now() + this.#ttlMs };
        },
        (err: unknown): Entry => {
          this.#stats.lookupFailures++;
          this.#onError?.(err);
          return { purposes: undefined, expiresAt: this.#now() + this.#failureTtlMs };
        },
      )
      .then((entry) => {
        this.#loading.delete(k);
        // A gap while the lookup ran may have hidden a change it did not see: answer this check, keep nothing.
        if (generation === this.#generation) this.#keep(k, entry);
        return entry;
      });
    this.#loading.set(k, { promise, updates });
    return promise;
  }

  #keep(k: string, entry: Entry): void {
    this.#entries.delete(k);
    this.#entries.set(k, entry);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  #onEvent(event: LiveEvent): void {
    const changed = decodeEvent('aimass.v1.ConsentChanged', event.data);
    const { tenant, userPseudonym } = changed.envelope;
    if (event.subject !== consentChangedSubject(tenant, userPseudonym)) {
      throw new MalformedEventError(`ConsentChanged for tenant ${tenant} on subject ${event.subject}: the envelope and the subject disagree`);
    }
    const purpose = purposeFromProto(changed.purpose);
    const state = consentStateFromProto(changed.state);
    if (!purpose || !state) throw new MalformedEventError(`ConsentChanged with purpose ${changed.purpose} and state ${changed.state}: not a decision this build knows`);
    this.#stats.events++;
    const held: Held = { state, sequence: changed.recordSequence, isDefault: false };
    const k = key(tenant, userPseudonym);
    const loading = this.#loading.get(k);
    if (loading) merge(loading.updates, purpose, held);
    const entry = this.#entries.get(k);
    // A user not held is read through the lookup on its next check, which sees this change.
    if (entry?.purposes) merge(entry.purposes, purpose, held);
    else if (entry) this.#entries.delete(k);
  }
}

function key(tenant: string, userPseudonym: string): string {
  return `${tenant}/${userPseudonym}`;
}
