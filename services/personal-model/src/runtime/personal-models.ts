/**
 * The users' models: loading through the byte-bounded cache, training, refits and rollbacks as
 * compare-and-set writes of new versions, erasure. The gRPC layer validates requests and
 * translates; everything about versions and models happens here.
 */
import {
  PersonalModel,
  PersonalModelFormatError,
  PersonalModelInputError,
  type PersonalExample,
  type PersonalLearnerOptions,
} from '@aimass/ml';
import {
  ConflictError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  type Logger,
} from '@aimass/platform';
import { UnreadableModelError, WriteConflict, type CurrentState, type PersonalModelStore, type StoredVersion } from '../adapters/model-store.js';
import { ByteLruCache, type CacheStats } from '../domain/cache.js';
import { checkLabel, modelInput } from '../domain/validation.js';
import { CACHE_ENTRY_OVERHEAD_BYTES, CACHE_NEGATIVE_ENTRY_BYTES, describeGeneralModel, sameGeneralModel, type GeneralModelRef, type VersionInfo } from '../domain/versions.js';
import { advanceWatermark, unseenExamples } from '../domain/watermark.js';

/** A user's current model, as scoring uses it. */
export interface LoadedModel {
  readonly info: VersionInfo;
  readonly model: PersonalModel;
}

type CacheValue = { kind: 'model'; loaded: LoadedModel; checkedAt: number } | { kind: 'none'; checkedAt: number };

/** A store load in flight; `stale` once an invalidation arrived during it, so its result is not cached. */
interface Load {
  promise: Promise<LoadedModel | undefined>;
  stale: boolean;
}

/**
 * What changed in a user's model, for the other replicas (PersonalModelUpdated). `info` is
 * undefined when the model was erased: version 0, "no model any more".
 */
export interface ModelChange {
  tenant: string;
  user: string;
  info: VersionInfo | undefined;
  previousVersion: number;
  /** Erasures: the caller's erasure id, which makes the event id of a retried erasure the same. */
  erasureId?: string | undefined;
}

/** Tells the other replicas about a write; rejects when that could not be confirmed. */
export type ModelChangeAnnouncer = (change: ModelChange) => Promise<void>;

/** One training example, validated except for what depends on the model (label, lengths). */
export interface ExampleInput {
  general: { model: GeneralModelRef; logits: number[]; embedding: number[] };
  sparse: { dimension: number; indices: number[]; values: number[] } | undefined;
  label: string;
  weight: number;
  /** Stream sequence of the feedback event it comes from; 0 or absent when none. */
  sourceSequence?: number | undefined;
  /** Field path of the example, for error messages (`examples[3]`). */
  field: string;
}

export interface WriteResult {
  info: VersionInfo;
  /** The idempotency key was already applied, or every example was below the watermark: nothing written. */
  duplicate: boolean;
  /** Whether the version is the current one (a duplicate's may have been superseded since). */
  current: boolean;
  /** Examples this call learnt from. */
  applied: number;
  /** Examples this call did not learn from because the model already had (all of them for a duplicate). */
  skipped: number;
}

export interface PersonalModelsOptions {
  store: PersonalModelStore;
  logger: Logger;
  cacheMaxBytes: number;
  revalidateMs: number;
  versionsKept: number;
  learner: PersonalLearnerOptions;
  /** Labels of the general model, for users' first models. */
  labels: readonly string[];
  /** Sparse dimension of a model first trained without sparse features. */
  sparseDimension: number;
  /** Applied to every trained model before it is stored. */
  pruning?: { minAbsZ: number; maxSparseCoordinates: number } | undefined;
  /**
   * Called after every write (and every duplicate answer of the current version) before the
   * call is answered; a rejection answers UNAVAILABLE. Without it, other replicas see writes
   * after at most `revalidateMs`.
   */
  announce?: ModelChangeAnnouncer | undefined;
  /**
   * Called by `deleteUser` before anything is deleted: what memory holds about the user elsewhere
   * (their data key, their consent) is dropped too.
   */
  onErase?: ((tenant: string, user: string) => void) | undefined;
  now?: () => number;
}

/** Call options of the writes. */
export interface WriteOptions {
  expectedVersion: number;
  idempotencyKey?: string | undefined;
  signal: AbortSignal;
  deadline?: Date | undefined;
}

/**
 * What the gRPC service uses of the users' models. `PersonalModels` implements it; consent
 * enforcement (`ConsentCheckingModels`) wraps it behind the same interface.
 */
export interface PersonalModelAccess {
  /** The user's current model, or undefined when there is none (or it may not be used). */
  current(tenant: string, user: string): Promise<LoadedModel | undefined>;
  train(tenant: string, user: string, examples: ExampleInput[], opts: WriteOptions): Promise<WriteResult>;
  refit(tenant: string, user: string, generalModel: GeneralModelRef, examples: ExampleInput[], opts: WriteOptions): Promise<WriteResult>;
  rollback(tenant: string, user: string, toVersion: number, opts: Omit<WriteOptions, 'idempotencyKey'>): Promise<VersionInfo>;
  version(tenant: string, user: string, version: number): Promise<{ stored: StoredVersion; current: boolean }>;
  listVersions(tenant: string, user: string, page: { limit: number; cursor?: string | undefined }): Promise<{ items: VersionInfo[]; current: number; nextCursor?: string | undefined }>;
  deleteUser(tenant: string, user: string, erasureId?: string): Promise<number>;
}

export interface PersonalModelsStats {
  cache: CacheStats;
  /** Cached models whose version was checked again against the store. */
  revalidations: number;
  /** Store loads of parameters (cold loads). */
  loads: number;
  versionsWritten: number;
  conflicts: number;
  duplicates: number;
  /** Examples skipped because the model had already learnt from them (watermark). */
  examplesSkipped: number;
  /** Cached entries dropped because another replica announced another version. */
  invalidations: number;
  /** Whole-cache drops (events may have been missed). */
  cacheClears: number;
  /** Changes announced to the other replicas. */
  announced: number;
  /** Cold loads whose parameters could not be opened (key destroyed, plaintext refused, tampered): answered as no model. */
  unreadable: number;
}

export class PersonalModels implements PersonalModelAccess {
  private readonly cache: ByteLruCache<CacheValue>;
  private readonly loading = new Map<string, Load>();
  private readonly now: () => number;
  private counters = { revalidations: 0, loads: 0, versionsWritten: 0, conflicts: 0, duplicates: 0, examplesSkipped: 0, invalidations: 0, cacheClears: 0, announced: 0, unreadable: 0 };

  constructor(private readonly options: PersonalModelsOptions) {
    this.cache = new ByteLruCache(options.cacheMaxBytes);
    this.now = options.now ?? Date.now;
  }

  stats(): PersonalModelsStats {
    return { cache: this.cache.stats(), ...this.counters };
  }

  /** The user's current model, from the cache when fresh enough, else from the store; undefined when there is none. */
  async current(tenant: string, user: string): Promise<LoadedModel | undefined> {
    const key = cacheKey(tenant, user);
    const cached = this.cache.get(key);
    if (cached && this.now() - cached.checkedAt < this.options.revalidateMs) return cached.kind === 'model' ? cached.loaded : undefined;
    const inflight = this.loading.get(key);
    if (inflight) return inflight.promise;
    const load: Load = { promise: Promise.resolve(undefined), stale: false };
    load.promise = this.load(tenant, user, cached, load).finally(() => {
      if (this.loading.get(key) === load) this.loading.delete(key);
    });
    this.loading.set(key, load);
    return load.promise;
  }

  private async load(tenant: string, user: string, cached: CacheValue | undefined, load: Load): Promise<LoadedModel | undefined> {
    const key = cacheKey(tenant, user);
    const pointer = await this.options.store.pointer(tenant, user);
    if (cached) {
      this.counters.revalidations++;
      const same = cached.kind === 'model' ? pointer?.version === cached.loaded.info.version : pointer === undefined;
      if (same) {
        if (!load.stale) cached.checkedAt = this.now();
        return cached.kind === 'model' ? cached.loaded : undefined;
      }
    }
    if (!pointer) {
      if (!load.stale) this.cache.set(key, { kind: 'none', checkedAt: this.now() }, CACHE_NEGATIVE_ENTRY_BYTES);
      return undefined;
    }
    let stored: StoredVersion | undefined;
    try {
      stored = await this.options.store.version(tenant, user, pointer.version);
    } catch (err) {
      if (!(err instanceof UnreadableModelError)) throw err;
      // Typically the user's erasure destroyed their key and the deletion has not reached this
      // store yet: no model, as it will be once it has. Cached as such until the pointer moves.
      this.counters.unreadable++;
      this.options.logger.warn({ tenant, user, version: pointer.version, reason: err.message }, 'personal model unreadable: answered as no model');
      if (!load.stale) this.cache.set(key, { kind: 'none', checkedAt: this.now() }, CACHE_NEGATIVE_ENTRY_BYTES);
      return undefined;
    }
    if (!stored) {
      // Only an erasure racing a write leaves a pointer without its version; treat it as no model.
      this.options.logger.warn({ tenant, user, version: pointer.version }, 'personal model pointer without its version document: treated as no model');
      if (!load.stale) this.cache.set(key, { kind: 'none', checkedAt: this.now() }, CACHE_NEGATIVE_ENTRY_BYTES);
      return undefined;
    }
    this.counters.loads++;
    const loaded = { info: stored.info, model: this.decode(stored) };
    // A load that an invalidation overtook may have read the version before the announced one:
    // answer this call with it, but let the next one read the store again.
    if (!load.stale) this.remember(tenant, user, loaded, loaded.model.memoryBytes);
    return loaded;
  }

  /**
   * Another replica announced `version` of a user's model (0: erased). A cached entry holding
   * another version is dropped, so the next call reads the store; one holding that very version
   * (typically this replica's own write) stays. Returns whether something was dropped.
   */
  invalidate(tenant: string, user: string, version: number): boolean {
    const key = cacheKey(tenant, user);
    const cached = this.cache.peek(key);
    const same = cached?.kind === 'model' ? cached.loaded.info.version === version : cached?.kind === 'none' && version === 0;
    if (same) return false;
    const inflight = this.loading.get(key);
    if (inflight) {
      inflight.stale = true;
      this.loading.delete(key);
    }
    if (!cached) return false;
    this.cache.delete(key);
    this.counters.invalidations++;
    return true;
  }

  /** Forgets every cached model (announcements may have been missed). */
  clearCache(): void {
    for (const load of this.loading.values()) load.stale = true;
    this.loading.clear();
    this.cache.clear();
    this.counters.cacheClears++;
  }

  private decode(stored: StoredVersion): PersonalModel {
    try {
      return PersonalModel.deserialize(stored.parameters, this.options.learner);
    } catch (err) {
      if (err instanceof PersonalModelFormatError) {
        throw new FailedPreconditionError(`stored personal model version ${stored.info.version} is unreadable (${err.message}): roll back to another version or refit`, { cause: err });
      }
      throw err;
    }
  }

  private remember(tenant: string, user: string, loaded: LoadedModel, parameterBytes: number): void {
    this.cache.set(cacheKey(tenant, user), { kind: 'model', loaded, checkedAt: this.now() }, parameterBytes + CACHE_ENTRY_OVERHEAD_BYTES);
  }

  /** Applies examples to the user's current model (or a new one) and writes the next version. */
  async train(tenant: string, user: string, examples: ExampleInput[], opts: WriteOptions): Promise<WriteResult> {
    const duplicate = await this.duplicate(tenant, user, opts.idempotencyKey, 'train', examples.length);
    if (duplicate) return this.announced(tenant, user, duplicate);
    const generalModel = sameGeneralAcross(examples);
    const pointer = await this.options.store.pointer(tenant, user);
    this.expect(pointer, opts.expectedVersion, 'expected_version');
    let model: PersonalModel;
    let base: VersionInfo | undefined;
    let stored: StoredVersion | undefined;
    if (pointer) {
      stored = await this.options.store.version(tenant, user, pointer.version).catch((err: unknown) => {
        if (!(err instanceof UnreadableModelError)) throw err;
        throw new FailedPreconditionError(
          `${err.message}. Nothing can be learnt on top of it: if the user is being erased this ends with the erasure; otherwise Refit the user from their history (or roll back to a readable version)`,
          { cause: err },
        );
      });
      if (!stored) throw new ConflictError('the model is being erased concurrently: read it again (GetModel) before training');
      base = stored.info;
    }
    // Before the pairing check: a replayed batch from before a refit is already learnt, not refused.
    const { apply, skipped } = unseenExamples(examples, base?.lastAppliedSequence ?? 0);
    this.counters.examplesSkipped += skipped;
    if (apply.length === 0 && base) {
      this.counters.duplicates++;
      return this.announced(tenant, user, { info: base, duplicate: true, current: true, applied: 0, skipped });
    }
    if (stored) {
      if (!sameGeneralModel(stored.info.generalModel, generalModel)) {
        throw new FailedPreconditionError(
          `the user's model is paired with general model ${describeGeneralModel(stored.info.generalModel)}, the examples come from ${describeGeneralModel(generalModel)}: Refit the user on the new general model first`,
        );
      }
      model = this.decode(stored).clone();
    } else {
      model = this.createModel(apply[0]!);
    }
    const labels = base?.labels ?? [...this.options.labels];
    this.learn(model, apply, labels);
    const info: VersionInfo = {
      version: (pointer?.version ?? 0) + 1,
      generalModel,
      labels,
      exampleCount: (base?.exampleCount ?? 0) + apply.length,
      kind: 'TRAIN',
      restoredFromVersion: 0,
      createdAt: new Date(this.now()),
      lastAppliedSequence: advanceWatermark(base?.lastAppliedSequence ?? 0, apply),
    };
    const idempotency = opts.idempotencyKey ? { key: opts.idempotencyKey, operation: 'train' as const } : undefined;
    const result = await this.commit(tenant, user, pointer, info, model.serialize(), idempotency, opts.signal, opts.deadline, 'expected_version', examples.length);
    return this.announced(tenant, user, result.duplicate ? result : { ...result, applied: apply.length, skipped });
  }

  /** Trains `model` on the examples (bad ones are the caller's INVALID_ARGUMENT) and prunes it to the storage budget. */
  private learn(model: PersonalModel, examples: ExampleInput[], labels: string[]): void {
    const prepared = prepare(examples, model, labels);
    try {
      model.train(prepared);
    } catch (err) {
      asInvalidArgument(err, 'examples');
    }
    this.prune(model);
  }

  /** A fresh model from a whole history, paired with `generalModel`. */
  async refit(
    tenant: string,
    user: string,
    generalModel: GeneralModelRef,
    examples: ExampleInput[],
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const duplicate = await this.duplicate(tenant, user, opts.idempotencyKey, 'refit', examples.length);
    if (duplicate) return this.announced(tenant, user, duplicate);
    examples.forEach((e) => {
      if (!sameGeneralModel(e.general.model, generalModel)) {
        throw new InvalidArgumentError(
          `${e.field}.general.model is ${describeGeneralModel(e.general.model)}, the refit is for ${describeGeneralModel(generalModel)}: re-embed the history with that model`,
          { field: `${e.field}.general.model` },
        );
      }
    });
    const pointer = await this.options.store.pointer(tenant, user);
    this.expect(pointer, opts.expectedVersion, 'expected_version');
    const model = this.createModel(examples[0]!);
    const labels = [...this.options.labels];
    this.learn(model, examples, labels);
    const info: VersionInfo = {
      version: (pointer?.version ?? 0) + 1,
      generalModel,
      labels,
      exampleCount: examples.length,
      kind: 'REFIT',
      restoredFromVersion: 0,
      createdAt: new Date(this.now()),
      // The refit model has learnt exactly its history: what came after it must still be applied.
      lastAppliedSequence: advanceWatermark(0, examples),
    };
    const idempotency = opts.idempotencyKey ? { key: opts.idempotencyKey, operation: 'refit' as const } : undefined;
    const result = await this.commit(tenant, user, pointer, info, model.serialize(), idempotency, opts.signal, opts.deadline, 'expected_version', examples.length);
    return this.announced(tenant, user, result);
  }

  /** Makes a kept version's parameters current again, as a new version. */
  async rollback(tenant: string, user: string, toVersion: number, opts: Omit<WriteOptions, 'idempotencyKey'>): Promise<VersionInfo> {
    const pointer = await this.options.store.pointer(tenant, user);
    if (!pointer) throw new NotFoundError('the user has no personal model to roll back');
    if (opts.expectedVersion !== 0) this.expect(pointer, opts.expectedVersion, 'expected_version');
    const target = toVersion >= pointer.oldestVersion && toVersion <= pointer.version ? await this.options.store.version(tenant, user, toVersion) : undefined;
    if (!target) {
      throw new NotFoundError(`to_version ${toVersion} is not a kept version of this user's model (kept: ${pointer.oldestVersion} to ${pointer.version})`);
    }
    // Only the current version's record is needed (its watermark): its parameters stay sealed.
    const current = toVersion === pointer.version ? target.info : await this.options.store.versionInfo(tenant, user, pointer.version);
    const info: VersionInfo = {
      ...target.info,
      version: pointer.version + 1,
      kind: 'ROLLBACK',
      restoredFromVersion: toVersion,
      createdAt: new Date(this.now()),
      // The watermark never goes back: feedback the rollback dropped is not learnt again when
      // its events are replayed.
      lastAppliedSequence: Math.max(target.info.lastAppliedSequence, current?.lastAppliedSequence ?? 0),
    };
    const result = await this.commit(tenant, user, pointer, info, target.parameters, undefined, opts.signal, opts.deadline, 'expected_version', 0);
    return (await this.announced(tenant, user, result)).info;
  }

  /** A version's record and parameters; version 0 is the current one. */
  async version(tenant: string, user: string, version: number): Promise<{ stored: StoredVersion; current: boolean }> {
    const pointer = await this.options.store.pointer(tenant, user);
    if (!pointer) throw new NotFoundError('the user has no personal model');
    const wanted = version === 0 ? pointer.version : version;
    const stored = await this.options.store.version(tenant, user, wanted);
    if (!stored) throw new NotFoundError(`version ${wanted} of the user's model does not exist or is no longer kept (kept: ${pointer.oldestVersion} to ${pointer.version})`);
    return { stored, current: wanted === pointer.version };
  }

  async listVersions(tenant: string, user: string, page: { limit: number; cursor?: string | undefined }): Promise<{ items: VersionInfo[]; current: number; nextCursor?: string | undefined }> {
    const pointer = await this.options.store.pointer(tenant, user);
    if (!pointer) throw new NotFoundError('the user has no personal model');
    const result = await this.options.store.listVersions(tenant, user, page);
    return { ...result, current: pointer.version };
  }

  /**
   * Deletes every version, idempotency record and cached copy of the user's model, then
   * announces version 0 (also when there was nothing left: a retried erasure must announce again).
   */
  async deleteUser(tenant: string, user: string, erasureId?: string): Promise<number> {
    this.options.onErase?.(tenant, user);
    this.cache.delete(cacheKey(tenant, user));
    const pointer = await this.options.store.pointer(tenant, user);
    const deleted = await this.options.store.deleteUser(tenant, user);
    // A load that started before the deletion may have re-filled the cache meanwhile.
    this.invalidate(tenant, user, 0);
    this.cache.delete(cacheKey(tenant, user));
    await this.announce({ tenant, user, info: undefined, previousVersion: pointer?.version ?? 0, erasureId });
    return deleted;
  }

  /** Drops every cached model of a tenant (its deletion); returns how many. */
  forgetTenant(tenant: string): number {
    return this.cache.deletePrefix(cacheKey(tenant, ''));
  }

  /** Drops a user's cached model (tests, or an operator forcing a reload). */
  evict(tenant: string, user: string): boolean {
    return this.cache.delete(cacheKey(tenant, user));
  }

  private async duplicate(tenant: string, user: string, key: string | undefined, operation: 'train' | 'refit', examples: number): Promise<WriteResult | undefined> {
    if (!key) return undefined;
    const found = await this.options.store.idempotent(tenant, user, key);
    if (!found) return undefined;
    if (found.operation !== operation) {
      throw new InvalidArgumentError(`idempotency_key was already used for a ${found.operation}: use a new key for this ${operation}`, { field: 'idempotency_key' });
    }
    this.counters.duplicates++;
    const pointer = await this.options.store.pointer(tenant, user);
    return { info: found.info, duplicate: true, current: pointer?.version === found.info.version, applied: 0, skipped: examples };
  }

  /**
   * Announces the version a call answers with, when it is still current: a duplicate answer too,
   * because the call that wrote it may have failed to announce it (its caller got UNAVAILABLE and
   * retried). A superseded version is not announced: the write that superseded it was.
   */
  private async announced(tenant: string, user: string, result: WriteResult): Promise<WriteResult> {
    if (result.current) await this.announce({ tenant, user, info: result.info, previousVersion: result.info.version - 1 });
    return result;
  }

  private async announce(change: ModelChange): Promise<void> {
    const announce = this.options.announce;
    if (!announce) return;
    await announce(change);
    this.counters.announced++;
  }

  private expect(pointer: CurrentState | undefined, expected: number, field: string): void {
    const current = pointer?.version ?? 0;
    if (expected !== current) {
      this.counters.conflicts++;
      throw new ConflictError(
        current === 0
          ? `${field} is ${expected} but the user has no model: send ${field} 0 to create the first one`
          : `${field} is ${expected} but the current version is ${current}: read the model again and retry with ${field} ${current}`,
      );
    }
  }

  private prune(model: PersonalModel): void {
    const p = this.options.pruning;
    if (p) model.prune({ minAbsZ: p.minAbsZ, maxCoordinates: p.maxSparseCoordinates });
  }

  private createModel(first: ExampleInput): PersonalModel {
    return PersonalModel.create(
      {
        classes: this.options.labels.length,
        embeddingDim: first.general.embedding.length,
        sparseDimension: first.sparse && first.sparse.dimension > 0 ? first.sparse.dimension : this.options.sparseDimension,
      },
      this.options.learner,
    );
  }

  private async commit(
    tenant: string,
    user: string,
    base: CurrentState | undefined,
    info: VersionInfo,
    parameters: Uint8Array,
    idempotency: { key: string; operation: 'train' | 'refit' } | undefined,
    signal: AbortSignal,
    deadline: Date | undefined,
    field: string,
    examples: number,
  ): Promise<WriteResult> {
    // A call whose caller has given up writes nothing: it would be answered with an error. (A
    // deadline that passes during the write itself still commits; a retry with the same
    // idempotency key then answers duplicate.)
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new DeadlineExceededError('deadline exceeded before the model was written');
    if (deadline && Date.now() >= deadline.getTime()) throw new DeadlineExceededError('deadline exceeded before the model was written');
    try {
      await this.options.store.write({ tenant, user, base, info, parameters, keep: this.options.versionsKept, idempotency });
    } catch (err) {
      if (!(err instanceof WriteConflict)) throw err;
      // The winner may have been a retry of this very request (same key): then this is a duplicate.
      if (idempotency) {
        const found = await this.duplicate(tenant, user, idempotency.key, idempotency.operation, examples);
        if (found) return found;
      }
      this.counters.conflicts++;
      const now = await this.options.store.pointer(tenant, user);
      throw new ConflictError(
        `another update of this user's model committed first (the current version is now ${now?.version ?? 0}): read it again and retry with ${field} ${now?.version ?? 0}`,
      );
    }
    this.counters.versionsWritten++;
    const model = PersonalModel.deserialize(parameters, this.options.learner);
    this.remember(tenant, user, { info, model }, model.memoryBytes);
    return { info, duplicate: false, current: true, applied: examples, skipped: 0 };
  }
}

export function cacheKey(tenant: string, user: string): string {
  return `${tenant}/${user}`;
}

/** Every example of a batch must come from one general model version: the model is paired with it. */
function sameGeneralAcross(examples: ExampleInput[]): GeneralModelRef {
  const first = examples[0]!.general.model;
  for (const e of examples) {
    if (!sameGeneralModel(e.general.model, first)) {
      throw new InvalidArgumentError(
        `${e.field}.general.model is ${describeGeneralModel(e.general.model)} but ${examples[0]!.field} comes from ${describeGeneralModel(first)}: one request trains on one general model version`,
        { field: `${e.field}.general.model` },
      );
    }
  }
  return first;
}

/** The learner's examples, checked against the model's shape and labels. */
function prepare(examples: ExampleInput[], model: PersonalModel, labels: readonly string[]): PersonalExample[] {
  const shape = { labels, embeddingDim: model.embeddingDim, sparseDimension: model.sparseDimension };
  return examples.map((e) => {
    const input = modelInput(e.general, e.sparse, shape, `${e.field}.general`, `${e.field}.sparse_features`);
    return { ...input, label: checkLabel(e.label, labels, `${e.field}.label`), weight: e.weight };
  });
}

/** Learner input errors that slipped past validation still answer INVALID_ARGUMENT. */
export function asInvalidArgument(err: unknown, field: string): never {
  if (err instanceof PersonalModelInputError) throw new InvalidArgumentError(`${field}: ${err.message}`, { field });
  throw err;
}
