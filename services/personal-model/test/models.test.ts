import { PersonalModel, serializedSize } from '@aimass/ml';
import { CancelledError, DeadlineExceededError, UnavailableError, createLogger } from '@aimass/platform';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTIONS, PersonalModelStore } from '../src/adapters/model-store.js';
import { personalModelConfigSchema } from '../src/config.js';
import { PersonalModels, type ExampleInput, type ModelChange, type PersonalModelsOptions } from '../src/runtime/personal-models.js';
import { pseudonymOf } from './support/harness.js';
import { EMBEDDING_DIM, GENERAL, mailWorld } from './support/world.js';

describe('PersonalModels on a real SQLite store', () => {
  let store: DocumentStore;
  let models: PersonalModels;
  let modelStore: PersonalModelStore;
  let clock = 1_000_000;
  const config = personalModelConfigSchema.parse({});
  const world = mailWorld(11);
  const examples = (n: number, label = 'ham', firstSequence = 0): ExampleInput[] =>
    Array.from({ length: n }, (_, i) => {
      const m = world.mail();
      const sourceSequence = firstSequence > 0 ? firstSequence + i : 0;
      return { general: { model: GENERAL, logits: m.general.logits, embedding: m.general.embedding }, sparse: m.sparse, label, weight: 1, sourceSequence, field: `examples[${i}]` };
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

  const replica = (extra: Partial<PersonalModelsOptions> = {}) =>
    new PersonalModels({
      store: modelStore,
      logger: createLogger({ service: 'test', level: 'silent' }),
      cacheMaxBytes: 1 << 20,
      revalidateMs: 60_000,
      versionsKept: 3,
      learner: config.learner,
      labels: config.labels,
      sparseDimension: config.sparseDimension,
      ...extra,
    });

  describe('feedback sequence watermark', () => {
    it('a replayed batch under another idempotency key has no second effect', async () => {
      const user = pseudonymOf('replayed');
      const batch = examples(3, 'spam', 10);
      const first = await models.train('acme', user, batch, { expectedVersion: 0, idempotencyKey: 'k1', signal: live() });
      expect(first).toMatchObject({ duplicate: false, applied: 3, skipped: 0, info: { version: 1, exampleCount: 3, lastAppliedSequence: 12 } });
      const replay = await models.train('acme', user, batch, { expectedVersion: 1, idempotencyKey: 'k2', signal: live() });
      expect(replay).toMatchObject({ duplicate: true, current: true, applied: 0, skipped: 3, info: { version: 1, exampleCount: 3, lastAppliedSequence: 12 } });
      expect(await modelStore.countUser('acme', user)).toEqual({ current: 1, versions: 1, idempotency: 1 });
      // The compare-and-set check still comes first.
      await expect(models.train('acme', user, batch, { expectedVersion: 0, idempotencyKey: 'k3', signal: live() })).rejects.toThrow(/current version is 1/);
    });

    it('applies only what is above the watermark, and examples without a sequence always', async () => {
      const user = pseudonymOf('overlap');
      await models.train('acme', user, examples(3, 'spam', 1), { expectedVersion: 0, signal: live() });
      const overlap = [...examples(2, 'spam', 2), ...examples(2, 'ham', 4), ...examples(1, 'ham')];
      const result = await models.train('acme', user, overlap, { expectedVersion: 1, signal: live() });
      expect(result).toMatchObject({ duplicate: false, applied: 3, skipped: 2, info: { version: 2, exampleCount: 6, lastAppliedSequence: 5 } });
      const unsequenced = await models.train('acme', user, examples(2, 'ham'), { expectedVersion: 2, signal: live() });
      expect(unsequenced).toMatchObject({ applied: 2, skipped: 0, info: { version: 3, exampleCount: 8, lastAppliedSequence: 5 } });
    });

    it('a refit takes the highest sequence of its history; a rollback never lowers the watermark', async () => {
      const user = pseudonymOf('refitted');
      await models.train('acme', user, examples(2, 'spam', 20), { expectedVersion: 0, signal: live() });
      await models.train('acme', user, examples(2, 'spam', 30), { expectedVersion: 1, signal: live() });
      const refit = await models.refit('acme', user, GENERAL, examples(3, 'ham', 5), { expectedVersion: 2, signal: live() });
      expect(refit).toMatchObject({ applied: 3, skipped: 0, info: { version: 3, kind: 'REFIT', exampleCount: 3, lastAppliedSequence: 7 } });
      const rolled = await models.rollback('acme', user, 1, { expectedVersion: 3, signal: live() });
      expect(rolled).toMatchObject({ version: 4, exampleCount: 2, restoredFromVersion: 1, lastAppliedSequence: 21 });
      const back = await models.rollback('acme', user, 3, { expectedVersion: 4, signal: live() });
      expect(back.lastAppliedSequence).toBe(21);
    });

    it('reads a version stored before the watermark existed as watermark 0', async () => {
      const user = pseudonymOf('legacy');
      await models.train('acme', user, examples(2, 'spam', 3), { expectedVersion: 0, signal: live() });
      const versions = await store.collection<Record<string, unknown>>({ name: COLLECTIONS.versions });
      const doc = (await versions.get('acme', `${user}:1`))!;
      const { last_applied_sequence: _dropped, ...legacy } = doc.data;
      await versions.put('acme', `${user}:1`, legacy, { expectedVersion: doc.version, user });
      const fresh = replica();
      expect((await fresh.current('acme', user))!.info.lastAppliedSequence).toBe(0);
      const again = await fresh.train('acme', user, examples(2, 'spam', 3), { expectedVersion: 1, signal: live() });
      expect(again).toMatchObject({ applied: 2, info: { version: 2, lastAppliedSequence: 4 } });
    });
  });

  describe('announcements and invalidation', () => {
    it('announces every write and every duplicate answer of the current version, and erasures as version 0', async () => {
      const changes: ModelChange[] = [];
      const a = replica({ announce: async (c) => void changes.push(c) });
      const user = pseudonymOf('announced');
      const seen = () => changes.map((c) => [c.info?.version ?? 0, c.previousVersion]);
      await a.train('acme', user, examples(2, 'spam', 1), { expectedVersion: 0, idempotencyKey: 'x', signal: live() });
      await a.train('acme', user, examples(2, 'spam', 1), { expectedVersion: 0, idempotencyKey: 'x', signal: live() });
      await a.train('acme', user, examples(2, 'spam', 1), { expectedVersion: 1, idempotencyKey: 'y', signal: live() });
      expect(seen()).toEqual([
        [1, 0],
        [1, 0],
        [1, 0],
      ]);
      expect(changes[1]!.info).toEqual(changes[0]!.info);
      await a.train('acme', user, examples(1, 'ham', 3), { expectedVersion: 1, signal: live() });
      // A duplicate whose version was superseded since is not announced again.
      await a.train('acme', user, examples(2, 'spam', 1), { expectedVersion: 0, idempotencyKey: 'x', signal: live() });
      await a.rollback('acme', user, 1, { expectedVersion: 2, signal: live() });
      await a.deleteUser('acme', user, 'erasure-1');
      expect(seen()).toEqual([
        [1, 0],
        [1, 0],
        [1, 0],
        [2, 1],
        [3, 2],
        [0, 3],
      ]);
      expect(changes[5]).toMatchObject({ info: undefined, erasureId: 'erasure-1' });
      expect(a.stats().announced).toBe(6);
    });

    it('an announcement that fails fails the call, after the write, and a retry with the same key announces it', async () => {
      let failing = true;
      const changes: ModelChange[] = [];
      const a = replica({
        announce: async (c) => {
          if (failing) throw new UnavailableError('bus down');
          changes.push(c);
        },
      });
      const user = pseudonymOf('unannounced');
      await expect(a.train('acme', user, examples(2, 'spam', 1), { expectedVersion: 0, idempotencyKey: 'once', signal: live() })).rejects.toBeInstanceOf(UnavailableError);
      expect((await modelStore.pointer('acme', user))?.version).toBe(1);
      failing = false;
      const retry = await a.train('acme', user, examples(2, 'spam', 1), { expectedVersion: 0, idempotencyKey: 'once', signal: live() });
      expect(retry).toMatchObject({ duplicate: true, info: { version: 1 } });
      expect(changes.map((c) => c.info?.version)).toEqual([1]);
    });

    it('drops a cached entry for another version, keeps it for the same one, and forgets loads it overtook', async () => {
      const a = replica();
      const user = pseudonymOf('invalidated');
      await a.train('acme', user, examples(2, 'spam'), { expectedVersion: 0, signal: live() });
      expect(a.invalidate('acme', user, 1)).toBe(false);
      expect(a.stats().cache.entries).toBe(1);
      const b = replica();
      await b.train('acme', user, examples(2, 'spam'), { expectedVersion: 1, signal: live() });
      expect((await a.current('acme', user))!.info.version).toBe(1);
      expect(a.invalidate('acme', user, 2)).toBe(true);
      expect((await a.current('acme', user))!.info.version).toBe(2);
      expect(a.stats().invalidations).toBe(1);

      // "No model" is kept for version 0 and dropped for a first version.
      const nobody = pseudonymOf('nobody-yet');
      expect(await a.current('acme', nobody)).toBeUndefined();
      expect(a.invalidate('acme', nobody, 0)).toBe(false);
      expect(a.invalidate('acme', nobody, 1)).toBe(true);

      // A load in flight when an announcement arrives answers its caller but is not cached.
      a.evict('acme', user);
      const loads = a.stats().loads;
      const pending = a.current('acme', user);
      a.invalidate('acme', user, 3);
      expect((await pending)!.info.version).toBe(2);
      expect(a.stats().cache.entries).toBe(0);
      await a.current('acme', user);
      expect(a.stats().loads).toBe(loads + 2);

      a.clearCache();
      expect(a.stats()).toMatchObject({ cacheClears: 1, cache: { entries: 0, bytes: 0 } });
    });
  });
});
