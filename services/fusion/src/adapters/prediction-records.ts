import { v1 } from '@aimass/proto';
import { CancelledError, DeadlineExceededError } from '@aimass/platform';
import { MAX_ATOMIC_OPS, StorageError, StoreUnavailableError, type Collection, type DocumentStore, type WriteOp } from '@aimass/storage';
import { Coalescer, type CoalescerStats } from '../domain/coalescer.js';
import {
  EXPIRING_INDEXES,
  bytesToFloats,
  bytesToUints,
  floatsToBytes,
  isLive,
  pruneExpired,
  uintsToBytes,
  type Expiring,
} from './records.js';

/**
 * What Feedback needs to train on a prediction without running the general model again: the
 * general model's output (logits referenced to class 0, probabilities, embedding) and the sparse
 * personal features when the prediction computed them (only a Score call needs them: a user known
 * to have no model, or a GENERAL_ONLY request, skips them, and Feedback featurizes the input). The input itself is kept too (encoded): feedback on the prediction carries
 * it into the user's history, from which the updater refits the user's model when the general
 * model's version changes (the stored general output belongs to the old version, so the new one
 * must run on the input again). It is personal data, kept only as long as the record
 * (`predictions.retentionHours`) and erased with the user's records; issue 6 encrypts it with the
 * user's key.
 */
export interface PredictionRecord {
  readonly predictionId: string;
  readonly userPseudonym: string;
  /** The validated input the prediction was made for. */
  readonly input: v1.InputPayload;
  readonly general: v1.GeneralOutput;
  readonly labels: readonly string[];
  /** The personal features sent with Score; absent when Score was not asked. */
  readonly sparse?: v1.SparseVector | undefined;
  /** The fused label the user was shown. */
  readonly label: string;
}

interface PredictionDoc extends Expiring {
  /** The encoded v1.InputPayload: bytes are stored raw, and protobuf is both compact and the event's own encoding. */
  input: Uint8Array;
  generalModel: { name: string; version: string };
  labels: string[];
  logits: number[];
  probabilities: number[];
  embedding: Uint8Array;
  /** Absent (all three) when the prediction did not compute the features. */
  sparseDimension?: number;
  sparseIndices?: Uint8Array;
  sparseValues?: Uint8Array;
  label: string;
}

export interface PredictionRecordsOptions {
  readonly retentionMs: number;
  /**
   * Share transactions between concurrent calls of one tenant (request coalescing, as for the
   * model calls): a commit costs far more than a row, and the store's calls are synchronous.
   */
  readonly coalescing?: { readonly maxDelayMs: number } | undefined;
}

export class PredictionRecords {
  readonly #store: DocumentStore;
  readonly #collection: Collection<PredictionDoc>;
  readonly #retentionMs: number;
  readonly #coalescer: Coalescer<string, WriteOp, undefined> | undefined;

  private constructor(store: DocumentStore, collection: Collection<PredictionDoc>, options: PredictionRecordsOptions) {
    this.#store = store;
    this.#collection = collection;
    this.#retentionMs = options.retentionMs;
    this.#coalescer = options.coalescing
      ? new Coalescer({
          maxItems: MAX_ATOMIC_OPS,
          maxDelayMs: options.coalescing.maxDelayMs,
          run: async (_tenant: string, ops: WriteOp[]) => {
            await this.#write(ops);
            return ops.map(() => undefined);
          },
          // Members have neither deadline nor signal: a write, once asked for, is never abandoned.
          deadlineError: () => new DeadlineExceededError('deadline exceeded writing prediction records'),
          cancelledError: () => new CancelledError('cancelled writing prediction records'),
          // A document's own fault (an id taken, too large) fails the shared transaction: alone, only its call fails.
          isolate: (err) => err instanceof StorageError && !(err instanceof StoreUnavailableError),
        })
      : undefined;
  }

  static async open(store: DocumentStore, options: PredictionRecordsOptions): Promise<PredictionRecords> {
    const collection = await store.collection<PredictionDoc>({ name: 'predictions', indexes: EXPIRING_INDEXES });
    return new PredictionRecords(store, collection, options);
  }

  /**
   * Saves a call's predictions in one transaction per chunk (a batch costs one write, not one per
   * item); with coalescing, in one transaction with those of concurrent calls of the tenant. Resolves
   * once they are stored (Feedback may name them right after the answer).
   */
  async save(tenant: string, records: readonly PredictionRecord[], now = new Date()): Promise<void> {
    const ops = this.#ops(tenant, records, now);
    if (this.#coalescer) await this.#coalescer.submit(tenant, tenant, ops, { deadline: undefined });
    else await this.#write(ops);
  }

  /** Counters of the write coalescer (undefined when coalescing is off). */
  coalescingStats(): CoalescerStats | undefined {
    return this.#coalescer?.stats();
  }

  async #write(ops: readonly WriteOp[]): Promise<void> {
    for (let start = 0; start < ops.length; start += MAX_ATOMIC_OPS) await this.#store.writeAtomic(ops.slice(start, start + MAX_ATOMIC_OPS));
  }

  #ops(tenant: string, records: readonly PredictionRecord[], now: Date): WriteOp[] {
    const expiresAt = new Date(now.getTime() + this.#retentionMs);
    return records.map((r) =>
      this.#collection.putOp(
        tenant,
        r.predictionId,
        {
          input: v1.InputPayload.encode(r.input).finish(),
          generalModel: { name: r.general.model?.name ?? '', version: r.general.model?.version ?? '' },
          labels: [...r.labels],
          logits: [...r.general.logits],
          probabilities: [...r.general.probabilities],
          embedding: floatsToBytes(r.general.embedding),
          ...(r.sparse
            ? { sparseDimension: r.sparse.dimension, sparseIndices: uintsToBytes(r.sparse.indices), sparseValues: floatsToBytes(r.sparse.values) }
            : {}),
          label: r.label,
          expiresAt,
        },
        { expectedVersion: 'absent', user: r.userPseudonym },
      ),
    );
  }

  /**
   * The live record of that id, if it belongs to that user. Another user's (or an expired) record
   * reads as absent, so an id cannot be used to probe someone else's predictions.
   */
  async find(tenant: string, predictionId: string, userPseudonym: string, now = new Date()): Promise<PredictionRecord | undefined> {
    const doc = await this.#collection.get(tenant, predictionId);
    if (!isLive(doc, now) || doc.user !== userPseudonym) return undefined;
    const d = doc.data;
    // Written before records kept the input (they expire within the retention): feedback on it
    // could not go into the user's history complete, so the caller is asked for the input instead.
    if (!(d.input instanceof Uint8Array)) return undefined;
    return {
      predictionId,
      userPseudonym,
      input: v1.InputPayload.decode(d.input),
      general: { model: { ...d.generalModel }, logits: d.logits, probabilities: d.probabilities, embedding: bytesToFloats(d.embedding) },
      labels: d.labels,
      sparse:
        d.sparseDimension !== undefined && d.sparseIndices instanceof Uint8Array && d.sparseValues instanceof Uint8Array
          ? { dimension: d.sparseDimension, indices: bytesToUints(d.sparseIndices), values: bytesToFloats(d.sparseValues) }
          : undefined,
      label: d.label,
    };
  }

  prune(tenant: string, now = new Date()): Promise<number> {
    return pruneExpired(this.#store, this.#collection, tenant, now);
  }

  /** Erasure: every record the user owns in the tenant, expired or not; how many were deleted. */
  deleteUser(tenant: string, userPseudonym: string): Promise<number> {
    return this.#collection.deleteByUser(tenant, userPseudonym);
  }
}
