import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PERSONAL_MODEL_FORMAT, PersonalModel } from '@aimass/ml';
import { Pseudonymizer } from '@aimass/platform';
import { PersonalModelStore } from '@aimass/personal-model';
import { MAX_ATOMIC_OPS, openSqliteStore, type Collection, type CollectionSpec, type DocumentData, type DocumentStore, type WriteOp, type WriteOpResult } from '@aimass/storage';
import { userKeyOf, type UserKeySpec } from '../../load/users.js';
import { hashUniform, ZipfDistribution } from '../../load/zipf.js';
import type { ModelPool } from './model-pool.js';
import { poolSlot } from './population.js';

/** What the store holds: one model per user for `users` users, drawn from a pool. */
export interface StoreSpec {
  readonly users: number;
  /** The users' pseudonyms (fusion's construction of `<prefix><rank>` in the tenant). */
  readonly key: Extract<UserKeySpec, { kind: 'pseudonym' }>;
  readonly examplesMax: number;
  readonly examplesS: number;
  /** Identity of the general model the pool was trained on (sha256 of its ONNX file). */
  readonly generalModel: string;
}

/** Figures of a built store (kept beside a cached file, so a reused store reports them too). */
export interface StoreFacts {
  readonly users: number;
  readonly fileBytes: number;
  /** Mean stored parameter bytes (the serialized model). */
  readonly parameterBytesMean: number;
  /** Mean version document bytes (parameters and the record's fields). */
  readonly documentBytesMean: number;
  readonly examplesMean: number;
  /** Users per example-count bucket (1, 2-4, 5-9, 10-49, 50-99, 100+). */
  readonly examplesHistogram: Readonly<Record<string, number>>;
  readonly buildSeconds: number;
  readonly usersPerSecond: number;
}

export interface BuiltStore extends StoreFacts {
  readonly path: string;
  /** Reused from an earlier run (the cache key matched and the models read back). */
  readonly cached: boolean;
  readonly key: string;
}

export interface EnsureStoreOptions {
  /** Where built stores are kept between runs (keyed by their parameters); the newest only. */
  readonly dir: string;
  /** False: always build (and leave the file for the caller to remove). */
  readonly cache: boolean;
  readonly onProgress: (line: string) => void;
  /** Reports progress at most this often. */
  readonly progressEveryMs?: number;
}

const STORE_FORMAT = 'aimass-bench-personal-store/1';

/** The cache key: everything that decides the store's content and layout. */
export function storeKey(spec: StoreSpec, pool: Pick<ModelPool, 'digest' | 'variants'>): string {
  const identity = JSON.stringify({
    format: STORE_FORMAT,
    modelFormat: { type: PERSONAL_MODEL_FORMAT.contentType, version: PERSONAL_MODEL_FORMAT.version },
    spec,
    pool: { digest: pool.digest, variants: pool.variants },
  });
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

function bucketOf(examples: number): string {
  if (examples <= 1) return '1';
  if (examples <= 4) return '2-4';
  if (examples <= 9) return '5-9';
  if (examples <= 49) return '10-49';
  if (examples <= 99) return '50-99';
  return '100+';
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * The million-user store: reused from `dir` when one with the same key is there and its models
 * read back with today's library, else built with `buildPersonalStore` (older cached stores are
 * deleted then: each is gigabytes).
 */
export async function ensurePersonalStore(spec: StoreSpec, pool: ModelPool, options: EnsureStoreOptions): Promise<BuiltStore> {
  await mkdir(options.dir, { recursive: true });
  const key = storeKey(spec, pool);
  const path = join(options.dir, `personal-store-${key}.sqlite`);
  const factsPath = `${path}.json`;
  if (options.cache && existsSync(path) && existsSync(factsPath)) {
    const facts = JSON.parse(await readFile(factsPath, 'utf8')) as StoreFacts;
    const problem = await checkStore(path, spec);
    if (problem === undefined) {
      options.onProgress(`reusing the store built earlier: ${path} (${(facts.fileBytes / 1e9).toFixed(2)} GB, key ${key})`);
      return { ...facts, path, cached: true, key };
    }
    options.onProgress(`the cached store ${path} does not read back (${problem}): building it again`);
  }
  if (options.cache) {
    // One cached store at a time: the others are stale parameters and gigabytes each.
    for (const name of await readdir(options.dir)) if (name.startsWith('personal-store-') && !name.startsWith(`personal-store-${key}.`)) await rm(join(options.dir, name), { force: true });
  }
  const partial = `${path}.partial`;
  for (const suffix of ['', '-wal', '-shm']) await rm(`${partial}${suffix}`, { force: true });
  const facts = await buildPersonalStore(partial, spec, pool, options);
  for (const suffix of ['-wal', '-shm']) await rm(`${path}${suffix}`, { force: true });
  await rename(partial, path);
  await writeFile(factsPath, `${JSON.stringify(facts, null, 2)}\n`);
  return { ...facts, path, cached: false, key };
}

/** Undefined when a sample of the store's users read back as models, else what went wrong. */
async function checkStore(path: string, spec: StoreSpec): Promise<string | undefined> {
  const documents = await openSqliteStore({ path });
  try {
    const store = await PersonalModelStore.open(documents);
    const pseudonymizer = new Pseudonymizer({ rootSecret: spec.key.rootSecret });
    for (let i = 0; i < 20; i++) {
      const rank = 1 + Math.floor(hashUniform(i, 0xc0de) * spec.users);
      const user = userKeyOf(spec.key, rank, pseudonymizer);
      const pointer = await store.pointer(spec.key.tenant, user);
      const version = pointer && (await store.version(spec.key.tenant, user, pointer.version));
      if (!version) return `user ${rank} has no model`;
      PersonalModel.deserialize(version.parameters);
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await documents.close();
  }
}

/**
 * A bulk load: the write batches a caller hands to `writeAtomic` are queued and committed
 * together, up to the store's limit of operations per transaction. The documents are exactly
 * the caller's; only the transaction boundaries change (one commit per user spends the build's
 * time on fsyncs). Results are not returned (the caller here ignores them); a failing group
 * fails the flush, and with it the build.
 */
export class BulkLoadStore implements DocumentStore {
  private queued: WriteOp[] = [];
  commits = 0;

  constructor(
    private readonly inner: DocumentStore,
    private readonly opsPerCommit = MAX_ATOMIC_OPS,
  ) {}

  get kind(): DocumentStore['kind'] {
    return this.inner.kind;
  }

  get maxDocumentBytes(): number {
    return this.inner.maxDocumentBytes;
  }

  collection<T extends DocumentData = DocumentData>(spec: CollectionSpec): Promise<Collection<T>> {
    return this.inner.collection<T>(spec);
  }

  async writeAtomic(ops: readonly WriteOp[]): Promise<WriteOpResult[]> {
    if (this.queued.length + ops.length > this.opsPerCommit) await this.flush();
    this.queued.push(...ops);
    return [];
  }

  async flush(): Promise<void> {
    if (this.queued.length === 0) return;
    const ops = this.queued;
    this.queued = [];
    await this.inner.writeAtomic(ops);
    this.commits++;
  }

  health(): Promise<void> {
    return this.inner.health();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.inner.close();
  }
}

/**
 * Writes one model per user for ranks 1..users through personal-model's own `PersonalModelStore`
 * (the documents, ids and owners the service writes: a pointer and version 1 per user), each
 * user's model a copy of the pool model for its example count (Zipf) and variant. The users'
 * write batches are committed ~250 at a time (`BulkLoadStore`): a bulk load, not a write
 * benchmark; the file is the same, and the service opens it with its own settings.
 */
export async function buildPersonalStore(path: string, spec: StoreSpec, pool: ModelPool, options: Pick<EnsureStoreOptions, 'onProgress' | 'progressEveryMs'>): Promise<StoreFacts> {
  if (pool.examplesMax !== spec.examplesMax) throw new Error(`the pool covers 1..${pool.examplesMax} examples, the store wants 1..${spec.examplesMax}`);
  const documents = new BulkLoadStore(await openSqliteStore({ path }));
  const started = performance.now();
  const every = options.progressEveryMs ?? 5000;
  let parameterBytes = 0;
  let documentBytes = 0;
  let exampleSum = 0;
  const histogram: Record<string, number> = {};
  try {
    const store = await PersonalModelStore.open(documents);
    const pseudonymizer = new Pseudonymizer({ rootSecret: spec.key.rootSecret });
    const examples = new ZipfDistribution(spec.examplesMax, spec.examplesS);
    let lastReport = started;
    for (let rank = 1; rank <= spec.users; rank++) {
      const slot = poolSlot(rank, examples, pool.variants);
      const model = pool.models[slot.examples - 1]?.[slot.variant];
      if (model === undefined) throw new Error(`the pool has no model for ${slot.examples} examples, variant ${slot.variant}`);
      await store.write({
        tenant: spec.key.tenant,
        user: userKeyOf(spec.key, rank, pseudonymizer),
        base: undefined,
        info: { ...model.stored.info, version: 1, createdAt: new Date() },
        parameters: model.stored.parameters,
        keep: 10,
      });
      parameterBytes += model.stored.parameters.byteLength;
      documentBytes += model.documentBytes;
      exampleSum += model.stored.info.exampleCount;
      const bucket = bucketOf(model.stored.info.exampleCount);
      histogram[bucket] = (histogram[bucket] ?? 0) + 1;
      const now = performance.now();
      if (now - lastReport >= every) {
        lastReport = now;
        const rate = rank / ((now - started) / 1000);
        options.onProgress(
          `store: ${rank.toLocaleString('en-US')} / ${spec.users.toLocaleString('en-US')} users (${((100 * rank) / spec.users).toFixed(1)}%), ${Math.round(rate).toLocaleString('en-US')} users/s, ${(parameterBytes / 1e9).toFixed(2)} GB of parameters, ETA ${clock((spec.users - rank) / rate)}`,
        );
      }
    }
  } finally {
    await documents.close();
  }
  const buildSeconds = (performance.now() - started) / 1000;
  const fileBytes = (await stat(path)).size;
  return {
    users: spec.users,
    fileBytes,
    parameterBytesMean: parameterBytes / spec.users,
    documentBytesMean: documentBytes / spec.users,
    examplesMean: exampleSum / spec.users,
    examplesHistogram: histogram,
    buildSeconds,
    usersPerSecond: spec.users / buildSeconds,
  };
}
