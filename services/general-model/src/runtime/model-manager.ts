import { readFile } from 'node:fs/promises';
import { inspectOnnxModel } from '@aimass/ml';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError, isDomainError, type Logger } from '@aimass/platform';
import { sha256Hex, type FsModelRepository, type RepositoryModel } from '../adapters/fs-repository.js';
import { WorkerReportedError, type SessionInfo, type WorkerPool } from '../adapters/worker-pool.js';
import { concatInputs, splitOutputs } from '../domain/batch-tensors.js';
import { DynamicBatcher, ItemFailure, type BatcherStats } from '../domain/batcher.js';
import { datatypeOfOrt } from '../domain/datatypes.js';
import { HealthProbe, zeroInputs } from '../domain/health-probe.js';
import { formatVersionPolicy, mergeModelConfigs, selectVersions, type ModelConfig, type VersionPolicy } from '../domain/model-config.js';
import { ModelStatisticsRecorder } from '../domain/statistics.js';
import type { HostTensor, InputLimits, ModelSignature, TensorSpec, ValidatedRequest } from '../domain/tensor.js';

/** Service-wide defaults a model's own configuration may override. */
export interface ModelDefaults {
  versionPolicy: VersionPolicy;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  preferredBatchSizes: number[];
  maxQueueRows: number;
  allowNonFinite: boolean;
  maxInputElements: number;
  /** Batches a version may have running at once, per worker. */
  batchesInFlightPerWorker: number;
  warmup: boolean;
}

export type ModelStateName = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING';

/** A model version loaded in every worker, with its batcher. */
export interface LoadedVersion {
  readonly model: string;
  readonly version: number;
  /** Pool key; unique per load, so a reloaded version never mixes with the old one. */
  readonly key: string;
  readonly path: string;
  readonly sha256: string;
  readonly loadedAt: Date;
  readonly signature: ModelSignature;
  readonly limits: InputLimits;
  /** Effective settings, for logs and metadata. */
  readonly settings: { maxBatchSize: number; maxQueueDelayMs: number; preferredBatchSizes: number[]; maxQueueRows: number; maxInFlight: number };
  /** metadata.json of the version, with the ONNX metadata_props under `onnx`. */
  readonly metadata: Record<string, unknown>;
  readonly onnxMetadata: Record<string, string>;
  readonly executionProvider: string;
  readonly session: SessionInfo;
  /** The effective configuration it was loaded with; a reload with another one replaces it. */
  readonly configKey: string;
  readonly batcher: DynamicBatcher<HostTensor[], HostTensor[]>;
  /** What it served since it was loaded (Triton's ModelStatistics). */
  readonly statistics: ModelStatisticsRecorder;
}

interface ModelEntry {
  name: string;
  state: ModelStateName;
  reason: string;
  versions: Map<number, LoadedVersion>;
  /** Versions the policy asked for at the last successful load. */
  policyVersions: number[];
  lock: Promise<unknown>;
}

export interface IndexEntry {
  name: string;
  version: string;
  state: string;
  reason: string;
}

export interface InferOptions {
  deadline?: Date | undefined;
  signal?: AbortSignal | undefined;
  /** Whose request it is: the batcher shares its queue and batches fairly between tenants. */
  tenant?: string | undefined;
}

export interface ModelManagerOptions {
  repository: FsModelRepository;
  pool: WorkerPool;
  defaults: ModelDefaults;
  logger: Logger;
  /** Provider each session uses (the first resolved one), reported in metadata and logs. */
  executionProvider: string;
}

let loadCounter = 0;

function describeLoadError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Loads, serves and unloads model versions: the Triton model-control semantics. A load reads the
 * model's config and version directories, loads the versions its policy selects in every worker
 * (warm-up included), switches traffic to them, then drains and releases versions no longer
 * selected. Loads and unloads of one model are serialized; other models are not blocked.
 */
export class ModelManager {
  private readonly entries = new Map<string, ModelEntry>();
  /** Models the server must have ready to be ready itself. */
  private readonly required = new Set<string>();
  private readonly readinessListeners: Array<(ready: boolean) => void> = [];
  private lastReady: boolean | undefined;

  constructor(private readonly options: ModelManagerOptions) {}

  get repository(): FsModelRepository {
    return this.options.repository;
  }

  get executionProvider(): string {
    return this.options.executionProvider;
  }

  onReadinessChange(listener: (ready: boolean) => void): void {
    this.readinessListeners.push(listener);
  }

  /** Loads the startup models; failures are logged and leave the server not ready, they do not throw. */
  async loadStartup(models: 'all' | readonly string[]): Promise<void> {
    const names = models === 'all' ? await this.options.repository.list() : [...models];
    if (names.length === 0) this.options.logger.warn({ repository: this.options.repository.root }, 'no models to load at startup');
    for (const name of names) this.required.add(name);
    this.notifyReadiness();
    for (const name of names) {
      try {
        await this.load(name);
      } catch (err) {
        this.options.logger.error({ model: name, reason: describeLoadError(err) }, 'model failed to load at startup');
      }
    }
  }

  /** Loads (or reloads) a model per its version policy. */
  load(name: string, override?: ModelConfig): Promise<void> {
    return this.withLock(name, () => this.doLoad(name, override));
  }

  /** Unloads every version of a model; requests already queued are served first. */
  unload(name: string): Promise<void> {
    return this.withLock(name, async () => {
      const entry = this.entry(name);
      if (entry.versions.size === 0 && !(await this.options.repository.exists(name))) {
        this.entries.delete(name);
        throw new NotFoundError(`model '${name}' is not in the repository`);
      }
      this.required.delete(name);
      const versions = [...entry.versions.values()];
      entry.state = 'UNLOADING';
      entry.versions = new Map();
      this.notifyReadiness();
      await Promise.all(versions.map((v) => this.release(v)));
      entry.state = 'UNAVAILABLE';
      entry.reason = 'unloaded';
      entry.policyVersions = [];
      this.options.logger.info({ model: name, versions: versions.map((v) => v.version) }, 'model unloaded');
      this.notifyReadiness();
    });
  }

  /** The loaded version to serve: the named one, or the highest loaded version. */
  resolve(name: string, version = ''): LoadedVersion {
    const entry = this.entries.get(name);
    if (!entry || entry.versions.size === 0) {
      const why = entry ? ` (${entry.state.toLowerCase()}${entry.reason ? `: ${entry.reason}` : ''})` : '';
      throw new NotFoundError(`model '${name}' is not loaded${why}`);
    }
    // On the request path: versions are kept in ascending order (see doLoad), so no sorting here.
    if (version === '') return [...entry.versions.values()].at(-1)!;
    const v = /^\d+$/.test(version) ? entry.versions.get(Number(version)) : undefined;
    if (!v) throw new NotFoundError(`model '${name}' has no loaded version '${version}' (loaded: ${[...entry.versions.keys()].join(', ')})`);
    return v;
  }

  /** Models with an entry (loaded, loading or failed), sorted. */
  modelNames(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Loaded versions of a model, ascending (empty if none). */
  loadedVersions(name: string): LoadedVersion[] {
    const entry = this.entries.get(name);
    return entry ? [...entry.versions.values()].sort((a, b) => a.version - b.version) : [];
  }

  modelState(name: string): { state: ModelStateName; reason: string } | undefined {
    const entry = this.entries.get(name);
    return entry ? { state: entry.state, reason: entry.reason } : undefined;
  }

  /** READY, and (with a version) that version loaded. */
  isModelReady(name: string, version = ''): boolean {
    const entry = this.entries.get(name);
    if (!entry || entry.state !== 'READY') return false;
    if (version === '') return entry.versions.size > 0;
    return /^\d+$/.test(version) && entry.versions.has(Number(version));
  }

  isServerReady(): boolean {
    for (const name of this.required) if (!this.isModelReady(name)) return false;
    return true;
  }

  /** Runs a validated request through the version's batcher; returns the requested outputs. */
  async infer(version: LoadedVersion, request: ValidatedRequest, options: InferOptions = {}): Promise<HostTensor[]> {
    const started = performance.now();
    let outputs: HostTensor[];
    try {
      outputs = await version.batcher.submit({
        rows: request.rows,
        key: request.shapeKey,
        payload: request.inputs,
        deadline: options.deadline?.getTime(),
        signal: options.signal,
        tenant: options.tenant,
      });
    } catch (err) {
      version.statistics.request('fail', request.rows, performance.now() - started);
      throw err;
    }
    version.statistics.request('success', request.rows, performance.now() - started);
    return request.outputs.length === outputs.length ? outputs : outputs.filter((o) => request.outputs.includes(o.name));
  }

  /** Triton's RepositoryIndex: one row per loaded version, or one row for a model with none. */
  async index(readyOnly: boolean): Promise<IndexEntry[]> {
    const names = new Set([...(await this.options.repository.list()), ...this.entries.keys()]);
    const rows: IndexEntry[] = [];
    for (const name of [...names].sort()) {
      const entry = this.entries.get(name);
      const loaded = this.loadedVersions(name);
      if (loaded.length > 0) {
        // Loaded versions serve even while a reload of the model is in progress.
        const state = entry?.state === 'UNLOADING' ? 'UNLOADING' : 'READY';
        for (const v of loaded) rows.push({ name, version: String(v.version), state, reason: entry?.reason ?? '' });
      } else {
        rows.push({ name, version: '', state: entry?.state ?? 'UNAVAILABLE', reason: entry?.reason || 'not loaded' });
      }
    }
    return readyOnly ? rows.filter((r) => r.state === 'READY') : rows;
  }

  batcherStats(): Record<string, BatcherStats> {
    const out: Record<string, BatcherStats> = {};
    for (const entry of this.entries.values()) for (const v of entry.versions.values()) out[`${v.model}:${v.version}`] = v.batcher.stats();
    return out;
  }

  /** Unloads everything (shutdown). */
  async close(): Promise<void> {
    const all = [...this.entries.values()].flatMap((e) => {
      const versions = [...e.versions.values()];
      e.versions = new Map();
      e.state = 'UNAVAILABLE';
      e.reason = 'server shut down';
      return versions;
    });
    await Promise.all(all.map((v) => this.release(v)));
  }

  private entry(name: string): ModelEntry {
    let entry = this.entries.get(name);
    if (!entry) {
      entry = { name, state: 'UNAVAILABLE', reason: 'not loaded', versions: new Map(), policyVersions: [], lock: Promise.resolve() };
      this.entries.set(name, entry);
    }
    return entry;
  }

  private withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const entry = this.entry(name);
    const run = entry.lock.then(fn, fn);
    entry.lock = run.catch(() => undefined);
    return run;
  }

  private notifyReadiness(): void {
    const ready = this.isServerReady();
    if (ready === this.lastReady) return;
    this.lastReady = ready;
    for (const l of this.readinessListeners) l(ready);
  }

  private async doLoad(name: string, override: ModelConfig | undefined): Promise<void> {
    const { logger, defaults } = this.options;
    const entry = this.entry(name);
    let model: RepositoryModel;
    try {
      model = await this.options.repository.read(name);
    } catch (err) {
      if (err instanceof NotFoundError) {
        if (entry.versions.size === 0) this.entries.delete(name);
        throw err;
      }
      return this.failLoad(entry, err);
    }
    this.required.add(name);
    const config = mergeModelConfigs(model.config, override);
    const policy = config.versionPolicy ?? defaults.versionPolicy;
    const { versions, missing } = selectVersions(policy, model.versions);
    if (missing.length > 0) return this.failLoad(entry, new Error(`version policy ${formatVersionPolicy(policy)} names versions not in the repository: ${missing.join(', ')}`));
    if (versions.length === 0) return this.failLoad(entry, new Error(`no version directory with ${config.defaultModelFilename ?? 'model.onnx'}`));

    if (entry.versions.size === 0) entry.state = 'LOADING';
    entry.reason = '';
    this.notifyReadiness();
    const fresh: LoadedVersion[] = [];
    try {
      for (const version of versions) {
        const path = this.options.repository.modelPath(model, version);
        const bytes = await readFile(path);
        const sha256 = sha256Hex(bytes);
        const current = entry.versions.get(version);
        if (current && current.sha256 === sha256 && current.configKey === JSON.stringify(config)) continue;
        fresh.push(await this.loadVersion(model, version, path, bytes, sha256, config));
      }
    } catch (err) {
      await Promise.all(fresh.map((v) => this.options.pool.unload(v.key)));
      return this.failLoad(entry, err);
    }
    // Switch traffic, then drain and release what the policy no longer selects (or was replaced).
    const next = new Map<number, LoadedVersion>();
    for (const v of versions) {
      const chosen = fresh.find((f) => f.version === v) ?? entry.versions.get(v);
      if (chosen) next.set(v, chosen);
    }
    const retired = [...entry.versions.values()].filter((v) => next.get(v.version) !== v);
    entry.versions = next;
    entry.policyVersions = versions;
    entry.state = 'READY';
    entry.reason = '';
    this.notifyReadiness();
    for (const v of fresh) {
      logger.info(
        {
          model: name,
          version: v.version,
          executionProvider: v.executionProvider,
          ...v.settings,
          loadMs: Math.round(v.session.loadMs),
          warmupMs: Math.round(v.session.warmupMs * 10) / 10,
          configFiles: model.configFiles,
        },
        'model version loaded',
      );
    }
    await Promise.all(retired.map((v) => this.release(v)));
    if (retired.length > 0) logger.info({ model: name, versions: retired.map((v) => v.version) }, 'model versions retired');
  }

  private failLoad(entry: ModelEntry, err: unknown): never {
    const reason = describeLoadError(err);
    if (entry.versions.size === 0) {
      entry.state = 'UNAVAILABLE';
      entry.reason = `load failed: ${reason}`;
    } else {
      // The versions already serving keep serving; the failure is reported.
      entry.state = 'READY';
      entry.reason = `last load failed: ${reason}`;
    }
    this.notifyReadiness();
    if (isDomainError(err) && !(err instanceof UnavailableError)) throw err;
    throw new FailedPreconditionError(`model '${entry.name}' failed to load: ${reason}`, { cause: err });
  }

  private async loadVersion(
    model: RepositoryModel,
    version: number,
    path: string,
    bytes: Uint8Array,
    sha256: string,
    config: ModelConfig,
  ): Promise<LoadedVersion> {
    const { defaults, pool } = this.options;
    const key = `${model.name}:${version}#${++loadCounter}`;
    const info = inspectOnnxModel(bytes);
    const fileMetadata = (await this.options.repository.versionMetadata(model, version)) ?? {};
    const session = await pool.load(key, path, defaults.warmup);
    try {
      const signature = signatureOf(session);
      const batchable = signature.inputs.length > 0 && signature.inputs.every((t) => t.dims.length >= 1 && t.dims[0] === -1);
      const fixedOutput = signature.outputs.find((t) => t.dims.length >= 1 && t.dims[0]! >= 0);
      let maxBatchSize: number;
      if (config.maxBatchSize !== undefined) {
        maxBatchSize = config.maxBatchSize;
        if (maxBatchSize > 0 && !batchable) {
          const culprit = signature.inputs.find((t) => !(t.dims.length >= 1 && t.dims[0] === -1));
          throw new Error(`max_batch_size ${maxBatchSize} needs a dynamic dimension 0 on every input, and input '${culprit?.name ?? '?'}' has [${culprit?.dims.join(',') ?? ''}]`);
        }
      } else {
        maxBatchSize = batchable && !fixedOutput ? defaults.maxBatchSize : 0;
      }
      const maxInFlight = pool.size * defaults.batchesInFlightPerWorker;
      const settings = {
        maxBatchSize,
        maxQueueDelayMs: config.maxQueueDelayMs ?? defaults.maxQueueDelayMs,
        preferredBatchSizes: (config.preferredBatchSizes ?? defaults.preferredBatchSizes).filter((n) => n <= Math.max(1, maxBatchSize)),
        maxQueueRows: Math.max(config.maxQueueRows ?? defaults.maxQueueRows, maxBatchSize, 1),
        maxInFlight,
      };
      const statistics = new ModelStatisticsRecorder();
      const name = `${model.name}:${version}`;
      // Not counted in ModelStatistics: it answers no request.
      const probe = new HealthProbe({ run: () => pool.run(key, zeroInputs(signature)), ttlMs: HEALTH_PROBE_TTL_MS });
      const batcher = new DynamicBatcher<HostTensor[], HostTensor[]>(
        {
          name,
          maxBatchRows: Math.max(1, maxBatchSize),
          maxQueueDelayMs: settings.maxQueueDelayMs,
          preferredBatchRows: settings.preferredBatchSizes,
          maxQueueRows: settings.maxQueueRows,
          maxInFlight,
        },
        async (payloads, rows, waitedMs) => {
          for (const w of waitedMs) statistics.queued(w);
          // One execution: concatenated, run, split, and counted in ModelStatistics only once it answered.
          const execute = async (part: readonly (readonly HostTensor[])[], partRows: readonly number[]): Promise<HostTensor[][]> => {
            const started = performance.now();
            const feeds = concatInputs(part);
            const prepared = performance.now();
            const { outputs } = await pool.run(key, feeds);
            const ran = performance.now();
            const split = splitOutputs(outputs, partRows);
            const total = partRows.reduce((a, b) => a + b, 0);
            statistics.execution(total, { inputMs: prepared - started, inferMs: ran - prepared, outputMs: performance.now() - ran });
            return split;
          };
          try {
            return await execute(payloads, rows);
          } catch (err) {
            if (!(err instanceof WorkerReportedError)) throw err;
            if (payloads.length === 1) throw (await probe.healthy()) ? refusedInputs(name, err) : err;
            return runEachAlone(name, payloads.length, (i) => execute([payloads[i]!], [rows[i]!]).then((split) => split[0]!), () => probe.healthy());
          }
        },
      );
      return {
        model: model.name,
        version,
        key,
        path,
        sha256,
        loadedAt: new Date(),
        signature,
        limits: { maxBatchSize, allowNonFinite: config.allowNonFinite ?? defaults.allowNonFinite, maxInputElements: defaults.maxInputElements },
        settings,
        metadata: fileMetadata,
        onnxMetadata: info.metadata,
        executionProvider: this.options.executionProvider,
        session,
        configKey: JSON.stringify(config),
        batcher,
        statistics,
      };
    } catch (err) {
      await pool.unload(key);
      throw err;
    }
  }

  private async release(version: LoadedVersion): Promise<void> {
    await version.batcher.drain();
    version.batcher.close(new NotFoundError(`model '${version.model}' version ${version.version} was unloaded`));
    await this.options.pool.unload(version.key);
  }
}

function specOf(meta: SessionInfo['inputs'][number], kind: 'input' | 'output'): TensorSpec {
  if (!meta.isTensor) throw new Error(`${kind} '${meta.name}' is not a tensor (sequences and maps are not served)`);
  const datatype = datatypeOfOrt(meta.type);
  if (!datatype) throw new Error(`${kind} '${meta.name}' has type ${meta.type}, which this server does not serve`);
  return { name: meta.name, datatype, dims: meta.dims.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
}

function signatureOf(session: SessionInfo): ModelSignature {
  return { inputs: session.inputs.map((m) => specOf(m, 'input')), outputs: session.outputs.map((m) => specOf(m, 'output')) };
}

/** How long a version's health probe answer is reused (see HealthProbe). */
export const HEALTH_PROBE_TTL_MS = 1_000;

function refusedInputs(name: string, err: WorkerReportedError): InvalidArgumentError {
  return new InvalidArgumentError(`model ${name} could not run this request's inputs: ${err.message}`, { cause: err });
}

/**
 * After a batch's run failed: runs each of its requests alone, so that values one request sent
 * (a token id beyond an embedding table's rows, say) fail that request and not every request
 * batched with it, from whichever tenant. A request that fails alone is answered INVALID_ARGUMENT
 * with onnxruntime's message when the model is known to run: another request of the batch
 * succeeded, or, when none did, `modelRuns` (one row of zeros, as the warm-up) answered. Otherwise
 * the model itself is failing, and each request keeps its own error (INTERNAL), as does a request
 * that ran alone in its batch.
 */
async function runEachAlone(
  name: string,
  count: number,
  runAlone: (i: number) => Promise<HostTensor[]>,
  modelRuns: () => Promise<boolean>,
): Promise<(HostTensor[] | ItemFailure)[]> {
  const results: (HostTensor[] | ItemFailure)[] = [];
  // One at a time: a model that fails every run should not take every worker at once. A rerun that
  // answered is counted as an execution at its own size (Triton counts what ran); the refused batch
  // run is not, as a failed batch never is.
  for (let i = 0; i < count; i++) {
    try {
      results.push(await runAlone(i));
    } catch (err) {
      results.push(new ItemFailure(err));
    }
  }
  // Every request failed alone too: unless the probe runs, the model itself is failing, and each
  // request keeps its own error (a worker that died while rerunning stays UNAVAILABLE, retryable).
  if (results.every((r) => r instanceof ItemFailure) && !(await modelRuns())) return results;
  return results.map((r) => (r instanceof ItemFailure && r.error instanceof WorkerReportedError ? new ItemFailure(refusedInputs(name, r.error)) : r));
}
