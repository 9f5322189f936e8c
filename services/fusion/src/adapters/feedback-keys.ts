import { VersionConflictError, type Collection, type DocumentStore } from '@aimass/storage';
import { idempotencyRecordId } from '../domain/ids.js';
import { EXPIRING_INDEXES, isLive, pruneExpired, type Expiring } from './records.js';

/**
 * One Feedback idempotency key: the event id it was recorded under and what it was about.
 * `pending` while the feedback is being recorded; a crash in between leaves it pending and the
 * next retry finishes the job under the same event id (the trainer deduplicates by it).
 */
export interface FeedbackKey {
  readonly eventId: string;
  readonly fingerprint: string;
  readonly state: 'pending' | 'done';
}

interface FeedbackKeyDoc extends Expiring {
  eventId: string;
  fingerprint: string;
  state: 'pending' | 'done';
}

export interface HeldKey extends FeedbackKey {
  readonly version: number;
}

export class FeedbackKeys {
  readonly #store: DocumentStore;
  readonly #collection: Collection<FeedbackKeyDoc>;
  readonly #retentionMs: number;

  private constructor(store: DocumentStore, collection: Collection<FeedbackKeyDoc>, retentionMs: number) {
    this.#store = store;
    this.#collection = collection;
    this.#retentionMs = retentionMs;
  }

  static async open(store: DocumentStore, options: { retentionMs: number }): Promise<FeedbackKeys> {
    const collection = await store.collection<FeedbackKeyDoc>({ name: 'feedback_keys', indexes: EXPIRING_INDEXES });
    return new FeedbackKeys(store, collection, options.retentionMs);
  }

  /** The live record of a user's key (an expired one reads as absent). */
  async get(tenant: string, userPseudonym: string, key: string, now = new Date()): Promise<HeldKey | undefined> {
    const doc = await this.#collection.get(tenant, idempotencyRecordId(userPseudonym, key));
    if (!isLive(doc, now)) return undefined;
    return { eventId: doc.data.eventId, fingerprint: doc.data.fingerprint, state: doc.data.state, version: doc.version };
  }

  /**
   * Claims a key (pending). Undefined when another call claimed it first: the caller re-reads.
   * An expired record of the same key is replaced.
   */
  async claim(tenant: string, userPseudonym: string, key: string, value: Omit<FeedbackKey, 'state'>, now = new Date()): Promise<HeldKey | undefined> {
    const id = idempotencyRecordId(userPseudonym, key);
    const existing = await this.#collection.get(tenant, id);
    if (existing && existing.data.expiresAt.getTime() > now.getTime()) return undefined;
    try {
      const doc = await this.#collection.put(
        tenant,
        id,
        { ...value, state: 'pending', expiresAt: new Date(now.getTime() + this.#retentionMs) },
        { expectedVersion: existing ? existing.version : 'absent', user: userPseudonym },
      );
      return { ...value, state: 'pending', version: doc.version };
    } catch (err) {
      if (err instanceof VersionConflictError) return undefined;
      throw err;
    }
  }

  /** Marks a claimed key as recorded. */
  async complete(tenant: string, userPseudonym: string, key: string, held: HeldKey, now = new Date()): Promise<void> {
    await this.#collection
      .put(
        tenant,
        idempotencyRecordId(userPseudonym, key),
        { eventId: held.eventId, fingerprint: held.fingerprint, state: 'done', expiresAt: new Date(now.getTime() + this.#retentionMs) },
        { expectedVersion: held.version, user: userPseudonym },
      )
      .catch((err: unknown) => {
        // Someone else completed it meanwhile under the same event id: the same outcome.
        if (!(err instanceof VersionConflictError)) throw err;
      });
  }

  /** Releases a claim whose recording failed, so nothing remains of a rejected call. */
  async release(tenant: string, userPseudonym: string, key: string, held: HeldKey): Promise<void> {
    await this.#collection.delete(tenant, idempotencyRecordId(userPseudonym, key), { expectedVersion: held.version }).catch((err: unknown) => {
      if (!(err instanceof VersionConflictError)) throw err;
      return false;
    });
  }

  prune(tenant: string, now = new Date()): Promise<number> {
    return pruneExpired(this.#store, this.#collection, tenant, now);
  }

  /**
   * Erasure: every key of the user in the tenant, pending ones too. A Feedback recording meanwhile
   * finds its key gone when it completes (a version conflict, taken as done), so none is left.
   */
  deleteUser(tenant: string, userPseudonym: string): Promise<number> {
    return this.#collection.deleteByUser(tenant, userPseudonym);
  }

  /** Tenant deletion: every record of the tenant. */
  deleteTenant(tenant: string): Promise<number> {
    return this.#collection.deleteByTenant(tenant);
  }
}
