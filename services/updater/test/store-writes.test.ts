import { DocumentTooLargeError, VersionConflictError, openSqliteStore, type Collection, type DocumentStore } from '@aimass/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupedWrites } from '../src/adapters/grouped-writes.js';
import { UpdaterStore, UserErasedError } from '../src/adapters/updater-store.js';
import type { HistoryEntry } from '../src/domain/feedback.js';
import { clearPending } from '../src/domain/pending.js';

/**
 * The updater's writes on a real SQLite store: writes asked for in one turn share a transaction
 * and still answer each caller as its own atomic write would; the applier's last hints and the
 * cleared mark are one write that keeps the mark's compare-and-set.
 */

interface Doc {
  n: number;
}

const T = 'acme';

describe('GroupedWrites', () => {
  let store: DocumentStore;
  let docs: Collection<Doc>;

  beforeEach(async () => {
    store = await openSqliteStore({ path: ':memory:', maxDocumentBytes: 4096 });
    docs = await store.collection<Doc>({ name: 'docs' });
  });
  afterEach(async () => {
    await store.close();
  });

  it('commits the writes of one turn in one transaction, in the order they were asked for', async () => {
    const writes = new GroupedWrites(store);
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => writes.write([docs.putOp(T, `d${i}`, { n: i }, { expectedVersion: 'absent' })])),
      // Conditions see the writes before them in the group, as they would one after another.
      writes.write([docs.putOp(T, 'd0', { n: 100 }, { expectedVersion: 1 })]),
    ]);
    expect(writes.stats()).toEqual({ writes: 11, transactions: 1 });
    expect((await docs.get(T, 'd0'))?.data.n).toBe(100);
    expect((await docs.get(T, 'd9'))?.data.n).toBe(9);
  });

  it('fails only the write whose condition fails, with its own error, and commits the others', async () => {
    await docs.put(T, 'taken', { n: 0 });
    const writes = new GroupedWrites(store);
    const results = await Promise.allSettled([
      writes.write([docs.putOp(T, 'a', { n: 1 }, { expectedVersion: 'absent' })]),
      writes.write([docs.putOp(T, 'b', { n: 2 }, { expectedVersion: 'absent' }), docs.putOp(T, 'taken', { n: 2 }, { expectedVersion: 'absent' })]),
      writes.write([docs.putOp(T, 'c', { n: 3 }, { expectedVersion: 'absent' })]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const err = (results[1] as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(VersionConflictError);
    // Its position in its own write, not in the group.
    expect((err as VersionConflictError).opIndex).toBe(1);
    expect((await docs.get(T, 'a'))?.data.n).toBe(1);
    expect(await docs.get(T, 'b')).toBeUndefined();
    expect((await docs.get(T, 'c'))?.data.n).toBe(3);
    expect((await docs.get(T, 'taken'))?.version).toBe(1);
    // The group, the group without the failed write, the failed write alone.
    expect(writes.stats()).toEqual({ writes: 3, transactions: 3 });
  });

  it('answers each write alone when a failure names none of them', async () => {
    const writes = new GroupedWrites(store);
    const results = await Promise.allSettled([
      writes.write([docs.putOp(T, 'small', { n: 1 })]),
      writes.write([docs.putOp(T, 'large', { n: 2, pad: 'x'.repeat(8192) } as Doc)]),
    ]);
    expect(results[0]!.status).toBe('fulfilled');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(DocumentTooLargeError);
    expect(await docs.get(T, 'small')).toBeDefined();
    expect(await docs.get(T, 'large')).toBeUndefined();
  });

  it('splits writes that together exceed the store\'s 500 operations per transaction', async () => {
    const writes = new GroupedWrites(store);
    await Promise.all(Array.from({ length: 3 }, (_, w) => writes.write(Array.from({ length: 200 }, (_, i) => docs.putOp(T, `w${w}-${i}`, { n: i })))));
    expect(writes.stats()).toEqual({ writes: 3, transactions: 2 });
    expect(await docs.count(T)).toBe(600);
  });
});

function entry(pseudonym: string, sequence: number): HistoryEntry {
  const sealed = { keyId: 'k1', algorithm: 'none', nonce: new Uint8Array(0), ciphertext: new Uint8Array([sequence % 256]) };
  return {
    tenant: T,
    pseudonym,
    eventId: `ev-${pseudonym}-${sequence}`,
    sequence,
    label: 'spam',
    occurredAt: new Date(1_700_000_000_000 + sequence),
    predictionId: `p-${sequence}`,
    generalModel: { name: 'm', version: '1' },
    input: sealed,
    generalOutput: undefined,
    sparseFeatures: undefined,
  };
}

describe('UpdaterStore', () => {
  let db: DocumentStore;
  let store: UpdaterStore;
  const now = new Date('2026-12-05T10:00:00Z');

  beforeEach(async () => {
    db = await openSqliteStore({ path: ':memory:' });
    store = await UpdaterStore.open(db);
  });
  afterEach(async () => {
    await db.close();
  });

  it('appends the events taken in together in one transaction', async () => {
    const outcomes = await Promise.all(['u1', 'u2', 'u3', 'u4'].map((u, i) => store.append(entry(u, i + 1), now)));
    expect(outcomes).toEqual(['appended', 'appended', 'appended', 'appended']);
    expect(store.writeStats()).toEqual({ writes: 4, transactions: 1 });
    for (const u of ['u1', 'u2', 'u3', 'u4']) expect((await store.state(T, u))?.state).toMatchObject({ pending: true, events: 1 });
  });

  it('gives each event appended together its own outcome: duplicates and erased users drop only themselves', async () => {
    expect(await store.append(entry('u1', 1), now)).toBe('appended');
    await store.writeTombstone(T, 'gone', 'erasure-1', now);
    const outcomes = await Promise.all([
      store.append(entry('u1', 2), now),
      store.append(entry('u1', 1), now), // redelivered
      store.append(entry('gone', 3), now),
      store.append({ ...entry('u3', 4), eventId: 'ev-u1-1' }, now), // another user's event id
      store.append(entry('u2', 5), now),
    ]);
    expect(outcomes).toEqual(['appended', 'duplicate', 'erased', 'other-user', 'appended']);
    expect((await store.unapplied(T, 'u1', 10)).map((e) => e.sequence)).toEqual([1, 2]);
    expect((await store.state(T, 'u1'))?.state).toMatchObject({ pending: true, markedSequence: 2, events: 2 });
    expect((await store.unapplied(T, 'u2', 10)).map((e) => e.sequence)).toEqual([5]);
    expect(await store.state(T, 'u3')).toBeUndefined();
    expect(await store.state(T, 'gone')).toBeUndefined();
  });

  it('sets the hints and clears the mark in one write', async () => {
    await store.append(entry('u1', 1), now);
    await store.append(entry('u1', 2), now);
    const record = (await store.state(T, 'u1'))!;
    const { entries, complete } = await store.unappliedBatch(T, 'u1', 10);
    expect(complete).toBe(true);
    const before = store.writeStats().transactions;
    expect(await store.markAppliedAndClear(entries, T, 'u1', clearPending(record.state, now), record.version)).toBe(true);
    expect(store.writeStats().transactions - before).toBe(1);
    expect(await store.countUnapplied(T, 'u1')).toBe(0);
    expect((await store.state(T, 'u1'))?.state).toMatchObject({ pending: false, clearedAt: now, events: 2 });
  });

  it('keeps the mark when an event came in after it was read, and still sets the hints', async () => {
    await store.append(entry('u1', 1), now);
    const record = (await store.state(T, 'u1'))!;
    const { entries } = await store.unappliedBatch(T, 'u1', 10);
    await store.append(entry('u1', 2), now);
    expect(await store.markAppliedAndClear(entries, T, 'u1', clearPending(record.state, now), record.version)).toBe(false);
    expect((await store.state(T, 'u1'))?.state.pending).toBe(true);
    expect((await store.unapplied(T, 'u1', 10)).map((e) => e.sequence)).toEqual([2]);
  });

  it('writes nothing once the user is erased', async () => {
    await store.append(entry('u1', 1), now);
    const record = (await store.state(T, 'u1'))!;
    const { entries } = await store.unappliedBatch(T, 'u1', 10);
    await store.writeTombstone(T, 'u1', 'erasure-1', now);
    await expect(store.markAppliedAndClear(entries, T, 'u1', clearPending(record.state, now), record.version)).rejects.toBeInstanceOf(UserErasedError);
    expect((await store.state(T, 'u1'))?.state.pending).toBe(true);
    expect(await store.countUnapplied(T, 'u1')).toBe(1);
  });

  it('reports whether the unapplied entries read were all of them', async () => {
    for (let s = 1; s <= 3; s++) await store.append(entry('u1', s), now);
    expect((await store.unappliedBatch(T, 'u1', 2)).complete).toBe(false);
    expect((await store.unappliedBatch(T, 'u1', 3)).complete).toBe(true);
  });
});
