import { createHash } from 'node:crypto';
import type { SparseFeatures } from '@aimass/ml';
import { createLogger, Pseudonymizer } from '@aimass/platform';
import { COLLECTIONS, personalModelConfigSchema, PersonalModels, PersonalModelStore, type ExampleInput, type StoredVersion } from '@aimass/personal-model';
import { openSqliteStore } from '@aimass/storage';
import { feedbackMails, labelFor, type Taste } from './population.js';
import type { GeneralOutputOf } from './general-outputs.js';
import type { BenchMail } from './mails.js';

/** A mail with what fusion would send personal-model for it. */
export interface TrainingMail {
  readonly mail: BenchMail;
  readonly general: GeneralOutputOf;
  readonly sparse: SparseFeatures;
}

/** One trained model of the pool: what personal-model stored for a user with this much feedback. */
export interface PoolModel {
  readonly examples: number;
  readonly variant: number;
  readonly taste: Taste;
  readonly stored: StoredVersion;
  /**
   * Bytes of the stored version document: its parameters plus its record's fields as JSON (the
   * SQLite adapter stores the fields as JSON text and the bytes raw beside them).
   */
  readonly documentBytes: number;
}

export interface ModelPool {
  /** models[examples - 1][variant]. */
  readonly models: readonly (readonly PoolModel[])[];
  readonly examplesMax: number;
  readonly variants: number;
  /** Identity of the pool's shape (sizes and counts, not float bits), for cache keys. */
  readonly digest: string;
  readonly trainSeconds: number;
}

const POOL_TENANT = 'bench-pool';

/**
 * Trains a pool of real personal models: for every example count 1..examplesMax, `variants`
 * users, each labelling its own hash-chosen corpus mails with its taste, trained through
 * personal-model's own runtime (`PersonalModels.train`: the service's learner settings, pruning
 * and serialization) on an in-memory SQLite store. One Train call per user with all its
 * examples, as a Refit of its history would (the service stores one version per Train; the
 * model is the same as after one Train per feedback, up to pruning in between).
 */
export async function trainModelPool(mails: readonly TrainingMail[], options: { examplesMax: number; variants: number; onProgress?: (done: number, total: number) => void }): Promise<ModelPool> {
  const started = performance.now();
  const config = personalModelConfigSchema.parse({});
  const documentStore = await openSqliteStore({ path: ':memory:' });
  try {
    const store = await PersonalModelStore.open(documentStore);
    const versions = await documentStore.collection({ name: COLLECTIONS.versions });
    const models = new PersonalModels({
      store,
      logger: createLogger({ service: 'bench-model-pool', level: 'warn' }),
      cacheMaxBytes: config.cache.maxBytes,
      revalidateMs: config.cache.revalidateMs,
      versionsKept: 1,
      learner: config.learner,
      labels: config.labels,
      sparseDimension: config.sparseDimension,
      pruning: config.pruning,
    });
    const pseudonymizer = new Pseudonymizer({ rootSecret: 'bench-model-pool-secret-0123456789abcdef' });
    const signal = new AbortController().signal;
    const total = options.examplesMax * options.variants;
    const pool: PoolModel[][] = [];
    const digest = createHash('sha256');
    for (let n = 1; n <= options.examplesMax; n++) {
      const row: PoolModel[] = [];
      for (let v = 0; v < options.variants; v++) {
        const id = n * 64 + v;
        const taste: Taste = v % 3 === 2 ? 'no-newsletters' : 'neutral';
        const user = pseudonymizer.pseudonymize(POOL_TENANT, `pool-${id}`);
        const examples: ExampleInput[] = feedbackMails(id, n, mails).map((t, i) => ({
          general: { model: { ...t.general.model }, logits: t.general.logits, embedding: t.general.embedding },
          sparse: { dimension: t.sparse.dimension, indices: t.sparse.indices, values: t.sparse.values },
          label: labelFor(taste, t.mail),
          weight: 1,
          field: `examples[${i}]`,
        }));
        await models.train(POOL_TENANT, user, examples, { expectedVersion: 0, signal });
        const stored = await store.version(POOL_TENANT, user, 1);
        const [document] = (await versions.query(POOL_TENANT, { user, limit: 1 })).items;
        if (stored === undefined || document === undefined) throw new Error(`personal-model stored no version for pool user ${id}`);
        row.push({ examples: n, variant: v, taste, stored, documentBytes: documentBytes(document.data as Record<string, unknown>) });
        digest.update(`${n}:${v}:${stored.parameters.byteLength}:${stored.info.exampleCount};`);
        options.onProgress?.((n - 1) * options.variants + v + 1, total);
      }
      pool.push(row);
    }
    return { models: pool, examplesMax: options.examplesMax, variants: options.variants, digest: digest.digest('hex'), trainSeconds: (performance.now() - started) / 1000 };
  } finally {
    await documentStore.close();
  }
}

/** Binary fields count their length, the rest its JSON text. */
function documentBytes(data: Record<string, unknown>): number {
  let binary = 0;
  const json = JSON.stringify(data, (_key, value: unknown) => {
    if (value instanceof Uint8Array) {
      binary += value.byteLength;
      return null;
    }
    return value;
  });
  return binary + Buffer.byteLength(json, 'utf8');
}
