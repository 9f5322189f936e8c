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
import { WriteConflict, type CurrentState, type PersonalModelStore, type StoredVersion } from '../adapters/model-store.js';
import { ByteLruCache, type CacheStats } from '../domain/cache.js';
import { checkLabel, modelInput } from '../domain/validation.js';
import { CACHE_ENTRY_OVERHEAD_BYTES, CACHE_NEGATIVE_ENTRY_BYTES, describeGeneralModel, sameGeneralModel, type GeneralModelRef, type VersionInfo } from '../domain/versions.js';

/** A user's current model, as scoring uses it. */
export interface LoadedModel {
  readonly info: VersionInfo;
  readonly model: PersonalModel;
}

type CacheValue = { kind: 'model'; loaded: LoadedModel; checkedAt: number } | { kind: 'none'; checkedAt: number };

/** One training example, validated except for what depends on the model (label, lengths). */
export interface ExampleInput {
  general: { model: GeneralModelRef; logits: number[]; embedding: number[] };
  sparse: { dimension: number; indices: number[]; values: number[] } | undefined;
  label: string;
  weight: number;
  /** Field path of the example, for error messages (`examples[3]`). */
  field: string;
}

export interface WriteResult {
  info: VersionInfo;
  duplicate: boolean;
  /** Whether the version is the current one (a duplicate's may have been superseded since). */
  current: boolean;
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
  now?: () => number;
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
}

export class PersonalModels {
  private readonly cache: ByteLruCache<CacheValue>;
  private readonly loading = new Map<string, Promise<LoadedModel | undefined>>();
  private readonly now: () => number;
  private counters = { revalidations: 0, loads: 0, versionsWritten: 0, conflicts: 0, duplicates: 0 };

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
    if (inflight) return inflight;
    const promise = this.load(tenant, user, cached).finally(() => this.loading.delete(key));
    this.loading.set(key, promise);
    return promise;
  }

  private async load(tenant: string, user: string, cached: CacheValue | undefined): Promise<LoadedModel | undefined> {
    const key = cacheKey(tenant, user);
    const pointer = await this.options.store.pointer(tenant, user);
    if (cached) {
      this.counters.revalidations++;
      const same = cached.kind === 'model' ? pointer?.version === cached.loaded.info.version : pointer === undefined;
      if (same) {
        cached.checkedAt = this.now();
        return cached.kind === 'model' ? cached.loaded : undefined;
      }
    }
    if (!pointer) {
      this.cache.set(key, { kind: 'none', checkedAt: this.now() }, CACHE_NEGATIVE_ENTRY_BYTES);
      return undefined;
    }
    const stored = await this.options.store.version(tenant, user, pointer.version);
    if (!stored) {
      // Only an erasure racing a write leaves a pointer without its version; treat it as no model.
      this.options.logger.warn({ tenant, user, version: pointer.version }, 'personal model pointer without its version document: treated as no model');
      this.cache.set(key, { kind: 'none', checkedAt: this.now() }, CACHE_NEGATIVE_ENTRY_BYTES);
      return undefined;
    }
    this.counters.loads++;
    const loaded = { info: stored.info, model: this.decode(stored) };
    this.remember(tenant, user, loaded, loaded.model.memoryBytes);
    return loaded;
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
  async train(tenant: string, user: string, examples: ExampleInput[], opts: { expectedVersion: number; idempotencyKey?: string | undefined; signal: AbortSignal; deadline?: Date | undefined }): Promise<WriteResult> {
    const duplicate = await this.duplicate(tenant, user, opts.idempotencyKey, 'train');
    if (duplicate) return duplicate;
    const generalModel = sameGeneralAcross(examples);
    const pointer = await this.options.store.pointer(tenant, user);
    this.expect(pointer, opts.expectedVersion, 'expected_version');
    let model: PersonalModel;
    let base: VersionInfo | undefined;
    if (pointer) {
      const stored = await this.options.store.version(tenant, user, pointer.version);
      if (!stored) throw new ConflictError('the model is being erased concurrently: read it again (GetModel) before training');
      base = stored.info;
      if (!sameGeneralModel(base.generalModel, generalModel)) {
        throw new FailedPreconditionError(
          `the user's model is paired with general model ${describeGeneralModel(base.generalModel)}, the examples come from ${describeGeneralModel(generalModel)}: Refit the user on the new general model first`,
        );
      }
      model = this.decode(stored).clone();
    } else {
      model = this.createModel(examples[0]!);
    }
    const labels = base?.labels ?? [...this.options.labels];
    this.learn(model, examples, labels);
    const info: VersionInfo = {
      version: (pointer?.version ?? 0) + 1,
      generalModel,
      labels,
      exampleCount: (base?.exampleCount ?? 0) + examples.length,
      kind: 'TRAIN',
      restoredFromVersion: 0,
      createdAt: new Date(this.now()),
    };
    return this.commit(tenant, user, pointer, info, model.serialize(), opts.idempotencyKey ? { key: opts.idempotencyKey, operation: 'train' } : undefined, opts.signal, opts.deadline, 'expected_version');
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
    opts: { expectedVersion: number; idempotencyKey?: string | undefined; signal: AbortSignal; deadline?: Date | undefined },
  ): Promise<WriteResult> {
    const duplicate = await this.duplicate(tenant, user, opts.idempotencyKey, 'refit');
    if (duplicate) return duplicate;
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
    };
    return this.commit(tenant, user, pointer, info, model.serialize(), opts.idempotencyKey ? { key: opts.idempotencyKey, operation: 'refit' } : undefined, opts.signal, opts.deadline, 'expected_version');
  }

  /** Makes a kept version's parameters current again, as a new version. */
  async rollback(tenant: string, user: string, toVersion: number, opts: { expectedVersion: number; signal: AbortSignal; deadline?: Date | undefined }): Promise<VersionInfo> {
    const pointer = await this.options.store.pointer(tenant, user);
    if (!pointer) throw new NotFoundError('the user has no personal model to roll back');
    if (opts.expectedVersion !== 0) this.expect(pointer, opts.expectedVersion, 'expected_version');
    const target = toVersion >= pointer.oldestVersion && toVersion <= pointer.version ? await this.options.store.version(tenant, user, toVersion) : undefined;
    if (!target) {
      throw new NotFoundError(`to_version ${toVersion} is not a kept version of this user's model (kept: ${pointer.oldestVersion} to ${pointer.version})`);
    }
    const info: VersionInfo = {
      ...target.info,
      version: pointer.version + 1,
      kind: 'ROLLBACK',
      restoredFromVersion: toVersion,
      createdAt: new Date(this.now()),
    };
    const result = await this.commit(tenant, user, pointer, info, target.parameters, undefined, opts.signal, opts.deadline, 'expected_version');
    return result.info;
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

  /** Deletes every version, idempotency record and cached copy of the user's model. */
  async deleteUser(tenant: string, user: string): Promise<number> {
    this.cache.delete(cacheKey(tenant, user));
    const deleted = await this.options.store.deleteUser(tenant, user);
    // A load that started before the deletion may have re-filled the cache meanwhile.
    this.cache.delete(cacheKey(tenant, user));
    return deleted;
  }

  /** Drops a user's cached model (tests, or an operator forcing a reload). */
  evict(tenant: string, user: string): boolean {
    return this.cache.delete(cacheKey(tenant, user));
  }

  private async duplicate(tenant: string, user: string, key: string | undefined, operation: 'train' | 'refit'): Promise<WriteResult | undefined> {
    if (!key) return undefined;
    const found = await this.options.store.idempotent(tenant, user, key);
    if (!found) return undefined;
    if (found.operation !== operation) {
      throw new InvalidArgumentError(`idempotency_key was already used for a ${found.operation}: use a new key for this ${operation}`, { field: 'idempotency_key' });
    }
    this.counters.duplicates++;
    const pointer = await this.options.store.pointer(tenant, user);
    return { info: found.info, duplicate: true, current: pointer?.version === found.info.version };
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
        const found = await this.duplicate(tenant, user, idempotency.key, idempotency.operation);
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
    return { info, duplicate: false, current: true };
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
