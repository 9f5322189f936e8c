import { PersonalModel, serializedSize } from '@aimass/ml';
import { CancelledError, DeadlineExceededError, createLogger } from '@aimass/platform';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PersonalModelStore } from '../src/adapters/model-store.js';
import { personalModelConfigSchema } from '../src/config.js';
import { PersonalModels, type ExampleInput } from '../src/runtime/personal-models.js';
import { pseudonymOf } from './support/harness.js';
import { EMBEDDING_DIM, GENERAL, mailWorld } from './support/world.js';

describe('PersonalModels on a real SQLite store', () => {
  let store: DocumentStore;
  let models: PersonalModels;
  let modelStore: PersonalModelStore;
  let clock = 1_000_000;
  const config = personalModelConfigSchema.parse({});
  const world = mailWorld(11);
  const examples = (n: number, label = 'ham'): ExampleInput[] =>
    Array.from({ length: n }, (_, i) => {
      const m = world.mail();
      return { general: { model: GENERAL, logits: m.general.logits, embedding: m.general.embedding }, sparse: m.sparse, label, weight: 1, field: `examples[${i}]` };
    });
  const live = () => new AbortController().signal;

  beforeAll(async () => {
    store = await openSqliteStore({ path: ':memory:' });
    modelStore = await PersonalModelStore.open(store);
    models = new PersonalModels({
      store: modelStore,
      logger: createLogger({ service: 'test', level: 'silent' }),
      cacheMaxBytes: 1 << 20,
      revalidateMs: 1000,
      versionsKept: 3,
      learner: config.learner,
      labels: config.labels,
      sparseDimension: config.sparseDimension,
      now: () => clock,
    });
  });
  afterAll(async () => {
    await store?.close();
  });

  it('writes nothing once the deadline has passed or the call was cancelled', async () => {
    const user = pseudonymOf('late');
    await expect(models.train('acme', user, examples(2), { expectedVersion: 0, signal: live(), deadline: new Date(Date.now() - 1) })).rejects.toBeInstanceOf(DeadlineExceededError);
    const cancelled = new AbortController();
    cancelled.abort(new CancelledError('call cancelled by the client'));
    await expect(models.train('acme', user, examples(2), { expectedVersion: 0, signal: cancelled.signal })).rejects.toBeInstanceOf(CancelledError);
    expect(await modelStore.countUser('acme', user)).toEqual({ current: 0, versions: 0, idempotency: 0 });
  });

  it('revalidates a cached model after revalidateMs and picks up a version another replica wrote', async () => {
    const user = pseudonymOf('shared');
    await models.train('acme', user, examples(3), { expectedVersion: 0, signal: live() });
    expect((await models.current('acme', user))!.info.version).toBe(1);
    // Another replica (another PersonalModels on the same store) trains the user.
    const other = new PersonalModels({
      store: modelStore,
      logger: createLogger({ service: 'test', level: 'silent' }),
      cacheMaxBytes: 1 << 20,
      revalidateMs: 1000,
      versionsKept: 3,
      learner: config.learner,
      labels: config.labels,
      sparseDimension: config.sparseDimension,
    });
    await other.train('acme', user, examples(3), { expectedVersion: 1, signal: live() });
    // Within revalidateMs this replica still serves its cached version.
    expect((await models.current('acme', user))!.info.version).toBe(1);
    clock += 1000;
    const before = models.stats();
    expect((await models.current('acme', user))!.info.version).toBe(2);
    expect(models.stats().revalidations).toBe(before.revalidations + 1);
    expect(models.stats().loads).toBe(before.loads + 1);
    // An unchanged version is confirmed with one pointer read, without reloading parameters.
    clock += 1000;
    await models.current('acme', user);
    expect(models.stats().loads).toBe(before.loads + 1);
    expect(models.stats().revalidations).toBe(before.revalidations + 2);
  });

  it('caches "no model" too, and forgets it once the user is trained here', async () => {
    const user = pseudonymOf('later');
    expect(await models.current('acme', user)).toBeUndefined();
    const misses = models.stats().cache.misses;
    expect(await models.current('acme', user)).toBeUndefined();
    expect(models.stats().cache.misses).toBe(misses);
    await models.train('acme', user, examples(1), { expectedVersion: 0, signal: live() });
    expect((await models.current('acme', user))!.info.exampleCount).toBe(1);
  });

  it('stores at most pruning.maxSparseCoordinates sparse coordinates per version', async () => {
    const small = new PersonalModels({
      store: modelStore,
      logger: createLogger({ service: 'test', level: 'silent' }),
      cacheMaxBytes: 1 << 20,
      revalidateMs: 1000,
      versionsKept: 3,
      learner: config.learner,
      labels: config.labels,
      sparseDimension: config.sparseDimension,
      pruning: { minAbsZ: 0, maxSparseCoordinates: 20 },
    });
    const user = pseudonymOf('budget');
    await small.train('acme', user, examples(10), { expectedVersion: 0, signal: live() });
    const stored = (await modelStore.version('acme', user, 1))!;
    expect(PersonalModel.deserialize(stored.parameters).usedCoordinates).toBe(20);
    // The compact format's size depends on the values; the float32 layout is its upper bound.
    expect(stored.parameters.length).toBeLessThanOrEqual(serializedSize(2, EMBEDDING_DIM, 20));
    expect((await small.current('acme', user))!.model.usedCoordinates).toBe(20);
  });

  it('loads a user once for concurrent requests', async () => {
    const user = pseudonymOf('popular');
    await models.train('acme', user, examples(2), { expectedVersion: 0, signal: live() });
    models.evict('acme', user);
    const loads = models.stats().loads;
    const all = await Promise.all(Array.from({ length: 10 }, () => models.current('acme', user)));
    expect(new Set(all).size).toBe(1);
    expect(models.stats().loads).toBe(loads + 1);
  });
});
