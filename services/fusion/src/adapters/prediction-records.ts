import type { DataKeySource } from '@aimass/crypto';
import { PLAINTEXT_ALGORITHM, PayloadUnreadableError, plaintextSealer, type PayloadSealer } from '@aimass/events';
import { v1 } from '@aimass/proto';
import { CancelledError, DeadlineExceededError } from '@aimass/platform';
import { MAX_ATOMIC_OPS, StorageError, StoreUnavailableError, type Collection, type DocumentStore, type WriteOp } from '@aimass/storage';
import { Coalescer, type CoalescerStats } from '../domain/coalescer.js';
import { keyFailure } from '../domain/data-keys.js';
import { RecordBodyError, decodeRecordBody, encodeRecordBody, recordAssociatedData, type RecordBody } from '../domain/record-body.js';
import { keyWithin, type KeyWait } from './key-wait.js';
import { EXPIRING_INDEXES, bytesToFloats, bytesToUints, isLive, pruneExpired, type Expiring } from './records.js';

/**
 * What Feedback needs to train on a prediction without running the general model again: the
 * general model's output (logits referenced to class 0, probabilities, embedding) and the sparse
 * personal features when the prediction computed them (only a Score call needs them: a user known
 * to have no model, or a GENERAL_ONLY request, skips them, and Feedback featurizes the input). The
 * input itself is kept too: feedback on the prediction carries it into the user's history, from
 * which the updater refits the user's model when the general model's version changes (the stored
 * general output belongs to the old version, so the new one must run on the input again). It is
 * personal data: sealed with the user's key (see `RecordBody`), kept only as long as the record
 * (`predictions.retentionHours`) and erased with the user's records.
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

/** A v1.EncryptedPayload as the store keeps it. */
interface SealedDoc {
  keyId: string;
  algorithm: string;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

interface PredictionDoc extends Expiring {
  /** The `RecordBody` (input, general output, features, fused label), sealed with the user's key. */
  sealed: SealedDoc;
  /** Not personal: the same for every user of the model. */
  generalModel: { name: string; version: string };
  labels: string[];
}

/** A record written before issue 6 (unencrypted, one field each); they expire within the retention. */
interface LegacyPredictionDoc extends Expiring {
  input?: Uint8Array;
  generalModel: { name: string; version: string };
  labels: string[];
  logits: number[];
  probabilities: number[];
  embedding: Uint8Array;
  sparseDimension?: number;
  sparseIndices?: Uint8Array;
  sparseValues?: Uint8Array;
  label: string;
}

/** What one `save` did. Records not stored are not an error: Feedback by their ids answers NOT_FOUND. */
export interface RecordsSaved {
  readonly stored: number;
  /** Not stored: the user has not granted `training` (or it could not be verified in time). */
  readonly withoutConsent: number;
  /** Not stored: the user's key could not be had (its fetch failed, or `late` could not take the record), or sealing failed. */
  readonly keyUnavailable: number;
  /** Why the first of `keyUnavailable` failed (for the log line). */
  readonly keyError?: unknown;
  /** Records whose key was still on its way at the wait's end: written once it comes (`late`). */
  readonly deferred?: number;
  /** Settles once the deferred records are written or given up (never rejects): what became of them. */
  readonly late?: Promise<LateRecordsOutcome>;
}

/** What became of a save's deferred records. */
export interface LateRecordsOutcome {
  readonly stored: number;
  /** Given up: the key fetch failed or outlasted `late.maxWaitMs`, the user was erased meanwhile, or fusion closed. */
  readonly keyUnavailable: number;
  readonly keyError?: unknown;
  /** The store refused the write. */
  readonly storeError?: unknown;
}

/** Counters of the record store since start. */
export interface PredictionRecordStats {
  readonly stored: number;
  readonly withoutConsent: number;
  readonly keyUnavailable: number;
  /** Of `stored`: written after the Predict answered, their key having come late. */
  readonly storedLate: number;
  /** Deferred records waiting for their key now. */
  readonly pendingLate: number;
  /** Records found that no longer open (their key destroyed: crypto-shredding; or altered): read as absent. */
  readonly unreadable: number;
}

/** Where Predict keeps its records and Feedback finds them; policies wrap it (consent). */
export interface PredictionRecordStore {
  /**
   * Stores the records it can within `wait` and answers what it did; rejects only when the store
   * itself fails. Resolves once they are stored (Feedback may name them right after the answer),
   * except those deferred for a key still coming: `late` tells what became of them, and `find`
   * waits for them meanwhile.
   */
  save(tenant: string, records: readonly PredictionRecord[], wait?: KeyWait & { readonly now?: Date | undefined }): Promise<RecordsSaved>;
  /**
   * The live record of that id, if it belongs to that user and still opens. Rejects when it cannot
   * tell (the user's key cannot be had: UNAVAILABLE).
   */
  find(tenant: string, predictionId: string, userPseudonym: string, wait?: KeyWait & { readonly now?: Date | undefined }): Promise<PredictionRecord | undefined>;
  /** Asks for the users' keys ahead of `save` (during the model calls); never fails. */
  warm(tenant: string, userPseudonyms: Iterable<string>): void;
  stats(): PredictionRecordStats;
}

export interface PredictionRecordsOptions {
  readonly retentionMs: number;
  /**
   * Share transactions between concurrent calls of one tenant (request coalescing, as for the
   * model calls): a commit costs far more than a row, and the store's calls are synchronous.
   */
  readonly coalescing?: { readonly maxDelayMs: number } | undefined;
  /** Seals each record's body with its user's key; `plaintextSealer()` (algorithm NONE) by default. */
  readonly sealer?: PayloadSealer | undefined;
  /** The key source behind the sealer, asked ahead by `warm`. */
  readonly keys?: Pick<DataKeySource, 'currentKey'> | undefined;
  /**
   * Records whose key is still on its way when `save`'s wait ends are kept in memory and written
   * when it comes, at most `maxWaitMs` later and at most `maxRecords` at a time (beyond: left out,
   * as without this). A `find` for such a record waits for it. Absent: left out at once.
   */
  readonly late?: { readonly maxWaitMs: number; readonly maxRecords: number } | undefined;
}

/** A record written after its save returned; `find` and erasure know it by `tenant` and id. */
interface LateRecord {
  readonly tenant: string;
  readonly userPseudonym: string;
  readonly abort: AbortController;
  readonly done: Promise<LateRecordsOutcome>;
}

const NOTHING_LATE: LateRecordsOutcome = { stored: 0, keyUnavailable: 0 };

/**
 * Prediction records in the store. Each record's personal part is one sealed payload (AES-256-GCM
 * with the user's data key when keys are configured), its associated data the record id; a
 * record whose key was destroyed (crypto-shredding) or that does not authenticate reads as absent.
 */
export class PredictionRecords implements PredictionRecordStore {
  readonly #store: DocumentStore;
  readonly #collection: Collection<PredictionDoc | LegacyPredictionDoc>;
  readonly #retentionMs: number;
  readonly #sealer: PayloadSealer;
  readonly #keys: Pick<DataKeySource, 'currentKey'> | undefined;
  readonly #coalescer: Coalescer<string, WriteOp, undefined> | undefined;
  readonly #lateOptions: PredictionRecordsOptions['late'];
  /** By `lateId(tenant, predictionId)`. */
  readonly #late = new Map<string, LateRecord>();
  #stats = { stored: 0, storedLate: 0, keyUnavailable: 0, unreadable: 0 };

  private constructor(store: DocumentStore, collection: Collection<PredictionDoc | LegacyPredictionDoc>, options: PredictionRecordsOptions) {
    this.#store = store;
    this.#collection = collection;
    this.#retentionMs = options.retentionMs;
    this.#sealer = options.sealer ?? plaintextSealer();
    this.#keys = options.keys;
    this.#lateOptions = options.late;
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
    const collection = await store.collection<PredictionDoc | LegacyPredictionDoc>({ name: 'predictions', indexes: EXPIRING_INDEXES });
    return new PredictionRecords(store, collection, options);
  }

  warm(tenant: string, userPseudonyms: Iterable<string>): void {
    if (!this.#keys) return;
    for (const userPseudonym of new Set(userPseudonyms)) {
      // A failure here is met again, and reported, by the save that needs the key.
      this.#keys.currentKey({ tenant, userPseudonym }).catch(() => undefined);
    }
  }

  /**
   * Seals each record with its user's key, waiting for keys at most until `wait.deadline`. A record
   * whose key fetch failed is left out (counted, `keyUnavailable`); one whose key is still on its
   * way is deferred (`late` option: written when the key comes, `late` tells when) or else left out.
   * Then saves the sealed ones in one transaction per chunk (a batch costs one write, not one per
   * item); with coalescing, in one transaction with those of concurrent calls of the tenant.
   */
  async save(tenant: string, records: readonly PredictionRecord[], wait: KeyWait & { readonly now?: Date | undefined } = {}): Promise<RecordsSaved> {
    const now = wait.now ?? new Date();
    let keyUnavailable = 0;
    let keyError: unknown;
    const deferred: Promise<LateRecordsOutcome>[] = [];
    const sealed = await Promise.all(
      records.map(async (r) => {
        let settled = false;
        const sealing = this.#sealer.seal({ tenant, userPseudonym: r.userPseudonym }, encodeRecordBody(bodyOf(r)), recordAssociatedData(r.predictionId));
        sealing.then(
          () => (settled = true),
          () => (settled = true),
        );
        try {
          return { r, payload: await keyWithin(sealing, wait, 'sealing a prediction record') };
        } catch (err) {
          // The wait ended, not the fetch: the key is coming, so the record can still be kept.
          const late = !settled && err instanceof DeadlineExceededError ? this.#defer(tenant, r, sealing, now) : undefined;
          if (late) deferred.push(late);
          else {
            keyUnavailable += 1;
            keyError ??= err;
          }
          return undefined;
        }
      }),
    );
    this.#stats.keyUnavailable += keyUnavailable;
    const ops = this.#ops(tenant, sealed.filter((s) => s !== undefined), now);
    if (ops.length > 0) await this.#submit(tenant, ops);
    this.#stats.stored += ops.length;
    return {
      stored: ops.length,
      withoutConsent: 0,
      keyUnavailable,
      ...(keyError === undefined ? {} : { keyError }),
      ...(deferred.length === 0 ? {} : { deferred: deferred.length, late: Promise.all(deferred).then(sumLate) }),
    };
  }

  /**
   * Keeps `r` until its key comes (then writes it) or `late.maxWaitMs` passes; undefined when late
   * writes are off or `late.maxRecords` are waiting already.
   */
  #defer(tenant: string, r: PredictionRecord, sealing: Promise<v1.EncryptedPayload>, now: Date): Promise<LateRecordsOutcome> | undefined {
    const options = this.#lateOptions;
    const id = lateId(tenant, r.predictionId);
    if (!options || this.#late.size >= options.maxRecords || this.#late.has(id)) return undefined;
    const abort = new AbortController();
    const done = (async (): Promise<LateRecordsOutcome> => {
      let payload: v1.EncryptedPayload;
      try {
        payload = await keyWithin(sealing, { deadline: Date.now() + options.maxWaitMs, signal: abort.signal }, 'sealing a prediction record after its Predict answered');
      } catch (keyError) {
        this.#stats.keyUnavailable += 1;
        return { stored: 0, keyUnavailable: 1, keyError };
      }
      // Erasure aborts first, then deletes: a write that starts later would outlive it.
      if (abort.signal.aborted) {
        this.#stats.keyUnavailable += 1;
        return { stored: 0, keyUnavailable: 1, keyError: new CancelledError('the user was erased while their prediction record waited for a key') };
      }
      try {
        await this.#submit(tenant, this.#ops(tenant, [{ r, payload }], now));
      } catch (storeError) {
        return { stored: 0, keyUnavailable: 0, storeError };
      }
      this.#stats.stored += 1;
      this.#stats.storedLate += 1;
      return { stored: 1, keyUnavailable: 0 };
    })().finally(() => this.#late.delete(id));
    this.#late.set(id, { tenant, userPseudonym: r.userPseudonym, abort, done });
    return done;
  }

  async #submit(tenant: string, ops: WriteOp[]): Promise<void> {
    if (this.#coalescer) await this.#coalescer.submit(tenant, tenant, ops, { deadline: undefined });
    else await this.#write(ops);
  }

  /**
   * Gives the deferred records up to `graceMs` to be written, then gives up the rest; for shutdown,
   * before the store closes.
   */
  async close(graceMs = 2_000): Promise<void> {
    const pending = [...this.#late.values()];
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending.map((l) => l.done)), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    await this.#cancelLate(() => true);
  }

  /** Aborts the deferred records `which` picks and waits until none of them can still be written. */
  async #cancelLate(which: (l: LateRecord) => boolean): Promise<void> {
    const cancelled = [...this.#late.values()].filter(which);
    for (const l of cancelled) l.abort.abort();
    await Promise.all(cancelled.map((l) => l.done));
  }

  /** Counters of the write coalescer (undefined when coalescing is off). */
  coalescingStats(): CoalescerStats | undefined {
    return this.#coalescer?.stats();
  }

  stats(): PredictionRecordStats {
    return { ...this.#stats, pendingLate: this.#late.size, withoutConsent: 0 };
  }

  async #write(ops: readonly WriteOp[]): Promise<void> {
    for (let start = 0; start < ops.length; start += MAX_ATOMIC_OPS) await this.#store.writeAtomic(ops.slice(start, start + MAX_ATOMIC_OPS));
  }

  #ops(tenant: string, sealed: readonly { r: PredictionRecord; payload: v1.EncryptedPayload }[], now: Date): WriteOp[] {
    const expiresAt = new Date(now.getTime() + this.#retentionMs);
    return sealed.map(({ r, payload }) =>
      this.#collection.putOp(
        tenant,
        r.predictionId,
        {
          sealed: { keyId: payload.keyId, algorithm: payload.algorithm, nonce: payload.nonce, ciphertext: payload.ciphertext },
          generalModel: { name: r.general.model?.name ?? '', version: r.general.model?.version ?? '' },
          labels: [...r.labels],
          expiresAt,
        },
        { expectedVersion: 'absent', user: r.userPseudonym },
      ),
    );
  }

  /**
   * The live record of that id, if it belongs to that user. Another user's (or an expired) record
   * reads as absent, so an id cannot be used to probe someone else's predictions; so does one
   * whose key was destroyed (the user erased: crypto-shredding) or that fails authentication.
   * Rejects with `keyFailure`'s errors when the user's key cannot be had within `wait`.
   */
  async find(
    tenant: string,
    predictionId: string,
    userPseudonym: string,
    wait: KeyWait & { readonly now?: Date | undefined } = {},
  ): Promise<PredictionRecord | undefined> {
    let doc = await this.#collection.get(tenant, predictionId);
    const late = doc === undefined ? this.#late.get(lateId(tenant, predictionId)) : undefined;
    // A prediction just answered whose record still waits for its key: Feedback right after Predict
    // waits for it (within its own deadline) rather than being told the id is unknown.
    if (late && late.userPseudonym === userPseudonym) {
      await keyWithin(late.done, wait, 'waiting for the prediction record to be sealed').catch((err: unknown) => {
        throw keyFailure(err, 'the prediction could not be read');
      });
      doc = await this.#collection.get(tenant, predictionId);
    }
    if (!isLive(doc, wait.now ?? new Date()) || doc.user !== userPseudonym) return undefined;
    const payload = sealedPayloadOf(doc.data);
    // Written before records kept the input (they expire within the retention): feedback on it
    // could not go into the user's history complete, so the caller is asked for the input instead.
    if (!payload) return undefined;
    let body: RecordBody;
    try {
      const bytes = await keyWithin(this.#sealer.open({ tenant, userPseudonym }, payload, recordAssociatedData(predictionId)), wait, 'opening a prediction record');
      body = decodeRecordBody(bytes);
    } catch (err) {
      if (err instanceof PayloadUnreadableError || err instanceof RecordBodyError) {
        this.#stats.unreadable += 1;
        return undefined;
      }
      throw keyFailure(err, 'the prediction could not be read');
    }
    return {
      predictionId,
      userPseudonym,
      input: body.input,
      general: { model: { ...doc.data.generalModel }, logits: [...body.logits], probabilities: [...body.probabilities], embedding: [...body.embedding] },
      labels: doc.data.labels,
      sparse: body.sparse,
      label: body.label,
    };
  }

  prune(tenant: string, now = new Date()): Promise<number> {
    return pruneExpired(this.#store, this.#collection, tenant, now);
  }

  /** Erasure: every record the user owns in the tenant, expired or not, and none written late; how many were deleted. */
  async deleteUser(tenant: string, userPseudonym: string): Promise<number> {
    await this.#cancelLate((l) => l.tenant === tenant && l.userPseudonym === userPseudonym);
    return this.#collection.deleteByUser(tenant, userPseudonym);
  }

  /** Tenant deletion: every record of the tenant, and none written late. */
  async deleteTenant(tenant: string): Promise<number> {
    await this.#cancelLate((l) => l.tenant === tenant);
    return this.#collection.deleteByTenant(tenant);
  }
}

function lateId(tenant: string, predictionId: string): string {
  return `${tenant}\u0000${predictionId}`;
}

function sumLate(outcomes: readonly LateRecordsOutcome[]): LateRecordsOutcome {
  return outcomes.reduce<LateRecordsOutcome>(
    (sum, o) => ({
      stored: sum.stored + o.stored,
      keyUnavailable: sum.keyUnavailable + o.keyUnavailable,
      ...((sum.keyError ?? o.keyError) === undefined ? {} : { keyError: sum.keyError ?? o.keyError }),
      ...((sum.storeError ?? o.storeError) === undefined ? {} : { storeError: sum.storeError ?? o.storeError }),
    }),
    NOTHING_LATE,
  );
}

function bodyOf(r: PredictionRecord): RecordBody {
  return { input: r.input, logits: r.general.logits, probabilities: r.general.probabilities, embedding: r.general.embedding, sparse: r.sparse, label: r.label };
}

/**
 * The record's sealed body. A record from before issue 6 is unencrypted: its fields make a body
 * with algorithm NONE, which the sealer opens only when plaintext is allowed (without keys, or with
 * `privacy.dataKeys.allowPlaintext`). Undefined for a record too old to hold its input.
 */
function sealedPayloadOf(d: PredictionDoc | LegacyPredictionDoc): v1.EncryptedPayload | undefined {
  if ('sealed' in d && d.sealed) return { keyId: d.sealed.keyId, algorithm: d.sealed.algorithm, nonce: asBuffer(d.sealed.nonce), ciphertext: asBuffer(d.sealed.ciphertext) };
  const legacy = d as LegacyPredictionDoc;
  if (!(legacy.input instanceof Uint8Array)) return undefined;
  const sparse =
    legacy.sparseDimension !== undefined && legacy.sparseIndices instanceof Uint8Array && legacy.sparseValues instanceof Uint8Array
      ? { dimension: legacy.sparseDimension, indices: bytesToUints(legacy.sparseIndices), values: bytesToFloats(legacy.sparseValues) }
      : undefined;
  const body = encodeRecordBody({
    input: v1.InputPayload.decode(legacy.input),
    logits: legacy.logits,
    probabilities: legacy.probabilities,
    embedding: bytesToFloats(legacy.embedding),
    sparse,
    label: legacy.label,
  });
  return { keyId: '', algorithm: PLAINTEXT_ALGORITHM, nonce: Buffer.alloc(0), ciphertext: asBuffer(body) };
}

/** The generated payload type wants Buffers; a view, not a copy. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
