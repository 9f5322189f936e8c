import type { v1 } from '@aimass/proto';
import { MAX_ATOMIC_OPS, type Collection, type DocumentStore } from '@aimass/storage';
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
 * personal features. No input text is kept: the features are hashed, the embedding is the model's.
 */
export interface PredictionRecord {
  readonly predictionId: string;
  readonly userPseudonym: string;
  readonly general: v1.GeneralOutput;
  readonly labels: readonly string[];
  readonly sparse: v1.SparseVector;
  /** The fused label the user was shown. */
  readonly label: string;
}

interface PredictionDoc extends Expiring {
  generalModel: { name: string; version: string };
  labels: string[];
  logits: number[];
  probabilities: number[];
  embedding: Uint8Array;
  sparseDimension: number;
  sparseIndices: Uint8Array;
  sparseValues: Uint8Array;
  label: string;
}

export class PredictionRecords {
  readonly #store: DocumentStore;
  readonly #collection: Collection<PredictionDoc>;
  readonly #retentionMs: number;

  private constructor(store: DocumentStore, collection: Collection<PredictionDoc>, retentionMs: number) {
    this.#store = store;
    this.#collection = collection;
    this.#retentionMs = retentionMs;
  }

  static async open(store: DocumentStore, options: { retentionMs: number }): Promise<PredictionRecords> {
    const collection = await store.collection<PredictionDoc>({ name: 'predictions', indexes: EXPIRING_INDEXES });
    return new PredictionRecords(store, collection, options.retentionMs);
  }

  /** Saves a call's predictions in one transaction per chunk (a batch costs one write, not one per item). */
  async save(tenant: string, records: readonly PredictionRecord[], now = new Date()): Promise<void> {
    const expiresAt = new Date(now.getTime() + this.#retentionMs);
    for (let start = 0; start < records.length; start += MAX_ATOMIC_OPS) {
      const ops = records.slice(start, start + MAX_ATOMIC_OPS).map((r) =>
        this.#collection.putOp(
          tenant,
          r.predictionId,
          {
            generalModel: { name: r.general.model?.name ?? '', version: r.general.model?.version ?? '' },
            labels: [...r.labels],
            logits: [...r.general.logits],
            probabilities: [...r.general.probabilities],
            embedding: floatsToBytes(r.general.embedding),
            sparseDimension: r.sparse.dimension,
            sparseIndices: uintsToBytes(r.sparse.indices),
            sparseValues: floatsToBytes(r.sparse.values),
            label: r.label,
            expiresAt,
          },
          { expectedVersion: 'absent', user: r.userPseudonym },
        ),
      );
      await this.#store.writeAtomic(ops);
    }
  }

  /**
   * The live record of that id, if it belongs to that user. Another user's (or an expired) record
   * reads as absent, so an id cannot be used to probe someone else's predictions.
   */
  async find(tenant: string, predictionId: string, userPseudonym: string, now = new Date()): Promise<PredictionRecord | undefined> {
    const doc = await this.#collection.get(tenant, predictionId);
    if (!isLive(doc, now) || doc.user !== userPseudonym) return undefined;
    const d = doc.data;
    return {
      predictionId,
      userPseudonym,
      general: { model: { ...d.generalModel }, logits: d.logits, probabilities: d.probabilities, embedding: bytesToFloats(d.embedding) },
      labels: d.labels,
      sparse: { dimension: d.sparseDimension, indices: bytesToUints(d.sparseIndices), values: bytesToFloats(d.sparseValues) },
      label: d.label,
    };
  }

  prune(tenant: string, now = new Date()): Promise<number> {
    return pruneExpired(this.#store, this.#collection, tenant, now);
  }
}
