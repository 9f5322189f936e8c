import { PersonalModel } from '@aimass/ml';
import { status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, pseudonymOf, startHarness, type Harness } from './support/harness.js';
import { example, mailWorld, scoreItem } from './support/world.js';

describe('versions: compare-and-set, retention, rollback, cache', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ versionsKept: 3 });
  });
  afterAll(async () => {
    await h?.close();
  });
  const world = mailWorld(5);

  it('of two concurrent trains on the same version exactly one wins; the other gets ABORTED and writes nothing', async () => {
    const user = pseudonymOf('racer');
    await h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: '', expectedVersion: 0 });
    for (let round = 1; round <= 3; round++) {
      const attempt = (key: string) =>
        h.call('train', { userPseudonym: user, examples: Array.from({ length: 20 }, () => example(world.mail(), 'ham')), idempotencyKey: key, expectedVersion: round });
      const results = await Promise.allSettled([attempt(`a${round}`), attempt(`b${round}`)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0]!.reason as { code: number }).code).toBe(status.ABORTED);
      expect((lost[0]!.reason as { details: string }).details).toMatch(/retry with expected_version/);
      expect((won[0] as PromiseFulfilledResult<v1.TrainResponse>).value.model!.version).toBe(round + 1);
    }
    const current = await h.call('getModel', { userPseudonym: user, version: 0, includeParameters: false });
    // 1 + three winning batches of 20: the losers' examples were not applied.
    expect(current.model).toMatchObject({ version: 4, exampleCount: 61 });
    // Only the winners' idempotency keys were recorded.
    expect((await h.service.store.countUser('acme', user)).idempotency).toBe(3);
  });

  it('of two concurrent retries with the same idempotency key, one writes and the other answers duplicate', async () => {
    const user = pseudonymOf('retrier');
    const request = { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: 'same-key', expectedVersion: 0 };
    const [a, b] = await Promise.all([h.call('train', request), h.call('train', request)]);
    expect([a.duplicate, b.duplicate].sort()).toEqual([false, true]);
    expect(a.model!.version).toBe(1);
    expect(b.model!.version).toBe(1);
    expect(await h.service.store.countUser('acme', user)).toEqual({ current: 1, versions: 1, idempotency: 1 });
  });

  it('a batch replayed after a crash (same examples, another idempotency key) has no second effect', async () => {
    const user = pseudonymOf('replayed');
    const batch = [101, 102, 103].map((sourceSequence) => example(world.mail(), 'spam', { sourceSequence }));
    const first = await h.call('train', { userPseudonym: user, examples: batch, idempotencyKey: 'batch-101-103', expectedVersion: 0 });
    expect(first).toMatchObject({ duplicate: false, examplesApplied: 3, examplesSkipped: 0, model: { version: 1, exampleCount: 3, lastAppliedSequence: 103 } });

    // The updater crashed before acknowledging; its successor builds the batch again, with a new key.
    const replay = await h.call('train', { userPseudonym: user, examples: batch, idempotencyKey: 'retry-after-crash', expectedVersion: 1 });
    expect(replay).toMatchObject({ duplicate: true, examplesApplied: 0, examplesSkipped: 3, model: { version: 1, exampleCount: 3, lastAppliedSequence: 103, current: true } });
    expect(await h.service.store.countUser('acme', user)).toEqual({ current: 1, versions: 1, idempotency: 1 });

    // A batch overlapping the watermark applies only the new events.
    const overlap = [102, 103, 104].map((sourceSequence) => example(world.mail(), 'ham', { sourceSequence }));
    const next = await h.call('train', { userPseudonym: user, examples: overlap, idempotencyKey: 'batch-102-104', expectedVersion: 1 });
    expect(next).toMatchObject({ duplicate: false, examplesApplied: 1, examplesSkipped: 2, model: { version: 2, exampleCount: 4, lastAppliedSequence: 104 } });
    const listed = await h.call('listVersions', { userPseudonym: user, page: undefined });
    expect(listed.versions.map((v) => [v.version, v.lastAppliedSequence])).toEqual([
      [2, 104],
      [1, 103],
    ]);
    // The idempotency key answers as before, with nothing applied by this call.
    const again = await h.call('train', { userPseudonym: user, examples: overlap, idempotencyKey: 'batch-102-104', expectedVersion: 2 });
    expect(again).toMatchObject({ duplicate: true, examplesApplied: 0, examplesSkipped: 3, model: { version: 2 } });
  });

  it('rejects a stale expected_version with ABORTED naming the current version', async () => {
    const user = pseudonymOf('racer');
    const err = await failure(h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: '', expectedVersion: 2 }));
    expect(err.code).toBe(status.ABORTED);
    expect(err.details).toMatch(/current version is 4/);
    const first = await failure(h.call('train', { userPseudonym: pseudonymOf('new-user'), examples: [example(world.mail(), 'spam')], idempotencyKey: '', expectedVersion: 3 }));
    expect(first.code).toBe(status.ABORTED);
    expect(first.details).toMatch(/has no model: send expected_version 0/);
  });

  it('keeps the last K versions, lists them newest first in pages, and rolls back to a kept one', async () => {
    const user = pseudonymOf('versioned');
    const probe = world.mail();
    const scores: number[][] = [];
    for (let v = 0; v < 5; v++) {
      await h.call('train', { userPseudonym: user, examples: Array.from({ length: 4 }, () => example(world.mail(), v % 2 ? 'ham' : 'spam')), idempotencyKey: '', expectedVersion: v });
      scores.push((await h.call('score', { items: [scoreItem(user, probe)] })).results[0]!.logits);
    }
    const page1 = await h.call('listVersions', { userPseudonym: user, page: { pageSize: 2, pageToken: '' } });
    expect(page1.versions.map((v) => [v.version, v.current])).toEqual([
      [5, true],
      [4, false],
    ]);
    expect(page1.nextPageToken).not.toBe('');
    const page2 = await h.call('listVersions', { userPseudonym: user, page: { pageSize: 2, pageToken: page1.nextPageToken } });
    expect(page2.versions.map((v) => v.version)).toEqual([3]);
    expect(page2.nextPageToken).toBe('');
    expect((await h.service.store.countUser('acme', user)).versions).toBe(3);
    expect((await failure(h.call('getModel', { userPseudonym: user, version: 2, includeParameters: false }))).code).toBe(status.NOT_FOUND);

    const gone = await failure(h.call('rollback', { userPseudonym: user, toVersion: 1, expectedVersion: 0 }));
    expect(gone.code).toBe(status.NOT_FOUND);
    expect(gone.details).toMatch(/kept: 3 to 5/);
    expect((await failure(h.call('rollback', { userPseudonym: user, toVersion: 3, expectedVersion: 4 }))).code).toBe(status.ABORTED);

    const v3 = await h.call('getModel', { userPseudonym: user, version: 3, includeParameters: true });
    const rolled = await h.call('rollback', { userPseudonym: user, toVersion: 3, expectedVersion: 5 });
    expect(rolled.model).toMatchObject({ version: 6, kind: v1.UpdateKind.UPDATE_KIND_ROLLBACK, restoredFromVersion: 3, exampleCount: 12, current: true });
    const v6 = await h.call('getModel', { userPseudonym: user, version: 6, includeParameters: true });
    expect(Buffer.compare(v6.parameters, v3.parameters)).toBe(0);
    expect((await h.call('score', { items: [scoreItem(user, probe)] })).results[0]!.logits).toEqual(scores[2]);
    expect((await h.call('listVersions', { userPseudonym: user, page: undefined })).versions.map((v) => v.version)).toEqual([6, 5, 4]);
    // expected_version 0 skips the check for rollbacks.
    expect((await h.call('rollback', { userPseudonym: user, toVersion: 5, expectedVersion: 0 })).model!.version).toBe(7);
  });

  it('gives the same scores after cache eviction and after a restart (cold loads)', async () => {
    const users = ['cold-a', 'cold-b', 'cold-c'].map((n) => pseudonymOf(n));
    const probes = Array.from({ length: 4 }, () => world.mail());
    for (const user of users) await h.call('train', { userPseudonym: user, examples: Array.from({ length: 30 }, () => example(world.mail(), 'ham')), idempotencyKey: '', expectedVersion: 0 });
    const items = users.flatMap((u, i) => probes.map((p, j) => scoreItem(u, p, `${i}-${j}`)));
    const warm = await h.call('score', { items });

    // A cache that fits one model and a half: scoring three users evicts.
    // The cache charges a model's in-memory size (float32 state), not its compact stored bytes.
    const sizes = await Promise.all(
      users.map((u) => h.call('getModel', { userPseudonym: u, version: 0, includeParameters: true }).then((r) => PersonalModel.deserialize(r.parameters).memoryBytes)),
    );
    const maxBytes = Math.floor(1.5 * (Math.max(...sizes) + 512));
    await h.restart({ versionsKept: 3, cache: { maxBytes } });
    const cold = await h.call('score', { items });
    expect(cold.results).toEqual(warm.results);
    const stats = h.service.stats();
    expect(stats.loads).toBe(3);
    expect(stats.cache.bytes).toBeLessThanOrEqual(maxBytes);
    for (const user of users) await h.call('score', { items: [scoreItem(user, probes[0]!)] });
    const after = h.service.stats();
    expect(after.cache.evictions).toBeGreaterThan(0);
    expect(after.loads).toBeGreaterThan(3);
    expect((await h.call('score', { items })).results).toEqual(warm.results);
  });
});
