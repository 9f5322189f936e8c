import { AES_256_GCM, AesGcmSealer, PrivacyDataKeySource, type DataKeyRing } from '@aimass/crypto';
import { PLAINTEXT_ALGORITHM } from '@aimass/events';
import { CancelledError, DeadlineExceededError, UnavailableError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { freePort } from '@aimass/testing';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FeedbackKeys } from '../src/adapters/feedback-keys.js';
import { PredictionRecords, type PredictionRecord } from '../src/adapters/prediction-records.js';
import { KnownTenants, floatsToBytes, uintsToBytes } from '../src/adapters/records.js';
import { decodeRecordBody } from '../src/domain/record-body.js';
import { testKeys, type TestKeys } from './support/keys.js';

const HOUR = 3_600_000;

describe('records in a real SQLite store', () => {
  let store: DocumentStore;
  beforeEach(async () => {
    store = await openSqliteStore({ path: ':memory:' });
  });
  afterEach(async () => {
    await store.close();
  });

  const record = (predictionId: string, userPseudonym: string): PredictionRecord => ({
    predictionId,
    userPseudonym,
    // The input is kept (encoded) for the user's history; a mail with headers round-trips whole.
    input: { kind: { $case: 'mail', value: { subject: `about ${predictionId}`, body: 'Grüße, the body', headers: { from: 'a@b.example', 'x-tag': '1' } } } },
    general: { model: { name: 'general', version: '3' }, logits: [0, -1.25], probabilities: [0.75, 0.25], embedding: [0.5, -0.25, 1.5] },
    labels: ['ham', 'spam'],
    sparse: { dimension: 1 << 20, indices: [3, 70_000, 1_048_575], values: [0.5, 1, 0.25] },
    label: 'ham',
  });

  it('keeps what Feedback needs, for its owner only, until it expires', async () => {
    const records = await PredictionRecords.open(store, { retentionMs: HOUR });
    const now = new Date('2030-01-01T00:00:00Z');
    await records.save('acme', [record('p1', 'user-a'), record('p2', 'user-b')], { now });
    expect(await records.find('acme', 'p1', 'user-a', { now })).toEqual(record('p1', 'user-a'));
    expect(await records.find('acme', 'p1', 'user-b', { now })).toBeUndefined();
    expect(await records.find('other', 'p1', 'user-a', { now })).toBeUndefined();
    expect(await records.find('acme', 'p1', 'user-a', { now: new Date(now.getTime() + HOUR) })).toBeUndefined();
    // Owned by the pseudonym, so an erasure of the user removes them.
    const collection = await store.collection({ name: 'predictions' });
    expect(await collection.deleteByUser('acme', 'user-a')).toBe(1);
    expect(await records.find('acme', 'p1', 'user-a', { now })).toBeUndefined();
  });

  it('keeps no sparse features for a prediction that did not compute them', async () => {
    const records = await PredictionRecords.open(store, { retentionMs: HOUR });
    const { sparse: _, ...withoutFeatures } = record('p-skipped', 'user-a');
    await records.save('acme', [withoutFeatures]);
    const found = await records.find('acme', 'p-skipped', 'user-a');
    expect(found).toEqual(withoutFeatures);
    expect(found!.sparse).toBeUndefined();
    // Inside the sealed body (algorithm NONE here: no keys), the features section is marked absent.
    const doc = await (await store.collection<{ sealed: { algorithm: string; ciphertext: Uint8Array } }>({ name: 'predictions' })).get('acme', 'p-skipped');
    expect(doc!.data.sealed.algorithm).toBe(PLAINTEXT_ALGORITHM);
    expect(decodeRecordBody(doc!.data.sealed.ciphertext).sparse).toBeUndefined();
  });

  it('never overwrites a prediction id and saves large batches in atomic chunks', async () => {
    const records = await PredictionRecords.open(store, { retentionMs: HOUR });
    await records.save('acme', [record('p1', 'u')]);
    await expect(records.save('acme', [record('p1', 'u')])).rejects.toThrow();
    await records.save('acme', Array.from({ length: 1_200 }, (_, i) => record(`b${i}`, 'u')));
    expect(await (await store.collection({ name: 'predictions' })).count('acme')).toBe(1_201);
  });

  it('with coalescing, concurrent saves of one tenant share a transaction; tenants never do; a taken id fails only its own call', async () => {
    let transactions = 0;
    // The real store, counting its transactions.
    const counted = new Proxy(store, {
      get(target, prop) {
        if (prop === 'writeAtomic') {
          return (ops: Parameters<DocumentStore['writeAtomic']>[0]) => {
            transactions += 1;
            return target.writeAtomic(ops);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const records = await PredictionRecords.open(counted, { retentionMs: HOUR, coalescing: { maxDelayMs: 0 } });
    await Promise.all(Array.from({ length: 10 }, (_, i) => records.save('acme', [record(`c${i}`, `user-${i}`)])));
    expect(transactions).toBe(1);
    for (let i = 0; i < 10; i++) expect(await records.find('acme', `c${i}`, `user-${i}`)).toEqual(record(`c${i}`, `user-${i}`));

    transactions = 0;
    await Promise.all([records.save('acme', [record('t1', 'u')]), records.save('globex', [record('t2', 'u')]), records.save('acme', [record('t3', 'u')])]);
    expect(transactions).toBe(2);
    expect(await records.find('globex', 't2', 'u')).toBeDefined();
    expect(await records.find('acme', 't2', 'u')).toBeUndefined();

    const outcomes = await Promise.allSettled([records.save('acme', [record('d1', 'u')]), records.save('acme', [record('c0', 'u')]), records.save('acme', [record('d2', 'u')])]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await records.find('acme', 'd1', 'u')).toBeDefined();
    expect(await records.find('acme', 'd2', 'u')).toBeDefined();
    expect(records.coalescingStats()).toMatchObject({ members: 16, isolated: 3 });
  });

  it('prunes only expired records, oldest first, across pages', async () => {
    const records = await PredictionRecords.open(store, { retentionMs: HOUR });
    const t0 = new Date('2030-01-01T00:00:00Z');
    await records.save('acme', Array.from({ length: 700 }, (_, i) => record(`old${i}`, 'u')), { now: t0 });
    await records.save('acme', [record('new', 'u')], { now: new Date(t0.getTime() + 2 * HOUR) });
    expect(await records.prune('acme', new Date(t0.getTime() + HOUR - 1))).toBe(0);
    expect(await records.prune('acme', new Date(t0.getTime() + HOUR))).toBe(700);
    expect(await records.find('acme', 'new', 'u', { now: t0 })).toBeDefined();
  });

  it('claims, completes and releases idempotency keys; a second claim loses; an expired key can be claimed again', async () => {
    const keys = await FeedbackKeys.open(store, { retentionMs: HOUR });
    const now = new Date('2030-01-01T00:00:00Z');
    const held = await keys.claim('acme', 'u', 'k', { eventId: 'e1', fingerprint: 'f' }, now);
    expect(held).toMatchObject({ eventId: 'e1', state: 'pending' });
    expect(await keys.claim('acme', 'u', 'k', { eventId: 'e2', fingerprint: 'f' }, now)).toBeUndefined();
    expect(await keys.get('acme', 'other-user', 'k', now)).toBeUndefined();
    await keys.complete('acme', 'u', 'k', held!, now);
    expect(await keys.get('acme', 'u', 'k', now)).toMatchObject({ eventId: 'e1', state: 'done' });

    const later = new Date(now.getTime() + 2 * HOUR);
    expect(await keys.get('acme', 'u', 'k', later)).toBeUndefined();
    const again = await keys.claim('acme', 'u', 'k', { eventId: 'e3', fingerprint: 'g' }, later);
    expect(again).toMatchObject({ eventId: 'e3' });
    await keys.release('acme', 'u', 'k', again!);
    expect(await keys.get('acme', 'u', 'k', later)).toBeUndefined();
  });

  it('remembers tenants once, for the prune', async () => {
    const tenants = await KnownTenants.open(store);
    await tenants.remember('acme');
    await tenants.remember('acme');
    await tenants.remember('beta');
    expect(await tenants.list()).toEqual(['acme', 'beta']);
    expect(await (await KnownTenants.open(store)).list()).toEqual(['acme', 'beta']);
  });
});

describe("prediction records sealed with users' keys (real AES-256-GCM keys, real SQLite)", () => {
  let store: DocumentStore;
  let keys: TestKeys;
  let ring: DataKeyRing;
  let records: PredictionRecords;
  beforeEach(async () => {
    store = await openSqliteStore({ path: ':memory:' });
    keys = testKeys();
    ring = keys.ring();
    records = await PredictionRecords.open(store, { retentionMs: HOUR, sealer: new AesGcmSealer({ keys: ring }), keys: ring });
  });
  afterEach(async () => {
    await store.close();
  });

  const MARKER = 'MARKER-records-7f3a';
  const record = (predictionId: string, userPseudonym: string): PredictionRecord => ({
    predictionId,
    userPseudonym,
    input: { kind: { $case: 'text', value: `${MARKER} for ${predictionId}` } },
    general: { model: { name: 'general', version: '3' }, logits: [0, -1.25], probabilities: [0.75, 0.25], embedding: [0.5, -0.25, 1.5] },
    labels: ['ham', 'spam'],
    sparse: { dimension: 1 << 20, indices: [3, 70_000], values: [0.5, 1] },
    label: 'ham',
  });
  const docs = async () => store.collection<{ sealed: { keyId: string; algorithm: string; nonce: Uint8Array; ciphertext: Uint8Array }; generalModel: unknown; labels: string[] }>({ name: 'predictions' });
  const unreachable = async () => new PrivacyDataKeySource({ address: `127.0.0.1:${await freePort()}`, callTimeoutMs: 2_000 });

  it("seals each record's personal part with its user's key; only the model and its labels stay in the clear", async () => {
    expect(await records.save('acme', [record('p1', 'user-a'), record('p2', 'user-b')])).toEqual({ stored: 2, withoutConsent: 0, keyUnavailable: 0 });
    const a = (await (await docs()).get('acme', 'p1'))!.data;
    const b = (await (await docs()).get('acme', 'p2'))!.data;
    expect(a.sealed.algorithm).toBe(AES_256_GCM);
    expect(a.sealed.nonce.byteLength).toBe(12);
    expect(a.sealed.keyId).not.toBe(b.sealed.keyId);
    expect(Buffer.from(a.sealed.ciphertext).includes(MARKER)).toBe(false);
    expect(Object.keys(a).sort()).toEqual(['expiresAt', 'generalModel', 'labels', 'sealed']);
    expect(a.generalModel).toEqual({ name: 'general', version: '3' });
    expect(await records.find('acme', 'p1', 'user-a')).toEqual(record('p1', 'user-a'));
    expect(await records.find('acme', 'p2', 'user-b')).toEqual(record('p2', 'user-b'));
  });

  it('binds the sealed body to its record: moved under another id, it reads as absent', async () => {
    await records.save('acme', [record('p1', 'user-a'), record('p2', 'user-a')]);
    const collection = await docs();
    const p1 = (await collection.get('acme', 'p1'))!;
    const p2 = (await collection.get('acme', 'p2'))!;
    await collection.put('acme', 'p2', { ...p2.data, sealed: p1.data.sealed }, { expectedVersion: p2.version, user: 'user-a' });
    expect(await records.find('acme', 'p2', 'user-a')).toBeUndefined();
    expect(records.stats()).toMatchObject({ unreadable: 1 });
    expect(await records.find('acme', 'p1', 'user-a')).toBeDefined();
  });

  it("after the user's key is destroyed (crypto-shredding) their records read as absent; others' do not", async () => {
    await records.save('acme', [record('p1', 'user-a'), record('p2', 'user-b')]);
    // Destroyed by another process (privacy); this one's memory lets go (ErasureRequested, or the TTL).
    await keys.ring().destroy('acme', 'user-a');
    ring.forget('acme', 'user-a');
    expect(await records.find('acme', 'p1', 'user-a')).toBeUndefined();
    expect(await records.find('acme', 'p2', 'user-b')).toEqual(record('p2', 'user-b'));
    expect(records.stats()).toMatchObject({ stored: 2, unreadable: 1 });
  });

  it('warm fetches the keys ahead, so the save that follows finds them in memory', async () => {
    records.warm('acme', ['user-a', 'user-a', 'user-b']);
    await new Promise((r) => setTimeout(r, 20));
    expect(ring.stats()).toMatchObject({ creates: 2 });
    const hits = ring.stats().hits;
    await records.save('acme', [record('p1', 'user-a'), record('p2', 'user-b')]);
    expect(ring.stats()).toMatchObject({ creates: 2, hits: hits + 2 });
  });

  it('without the key in time, a record is left out (counted), never failing the save; the others are stored', async () => {
    const source = await unreachable();
    try {
      const blind = await PredictionRecords.open(store, { retentionMs: HOUR, sealer: new AesGcmSealer({ keys: source }) });
      const down = await blind.save('acme', [record('p1', 'user-a')], { deadline: Date.now() + 5_000 });
      expect(down).toMatchObject({ stored: 0, keyUnavailable: 1 });
      expect(down.keyError).toBeInstanceOf(UnavailableError);
      // Slower than the wait allows: left out at the deadline (the fetch's retries take longer).
      const late = await blind.save('acme', [record('p2', 'user-a')], { deadline: Date.now() + 20 });
      expect(late).toMatchObject({ stored: 0, keyUnavailable: 1 });
      expect(late.keyError).toBeInstanceOf(DeadlineExceededError);
      expect(blind.stats()).toMatchObject({ stored: 0, keyUnavailable: 2 });
      expect(await (await docs()).count('acme')).toBe(0);
      // One user's key trouble does not hold back another's record.
      ring.forget('acme', 'user-a');
      const mixed = await PredictionRecords.open(store, {
        retentionMs: HOUR,
        sealer: {
          seal: (scope, bytes, ad) => (scope.userPseudonym === 'user-a' ? new AesGcmSealer({ keys: source }) : new AesGcmSealer({ keys: ring })).seal(scope, bytes, ad),
          open: (scope, payload, ad) => new AesGcmSealer({ keys: ring }).open(scope, payload, ad),
        },
      });
      expect(await mixed.save('acme', [record('p3', 'user-a'), record('p4', 'user-b')], { deadline: Date.now() + 5_000 })).toMatchObject({ stored: 1, keyUnavailable: 1 });
      expect(await records.find('acme', 'p4', 'user-b')).toBeDefined();
    } finally {
      source.close();
    }
  });

  /**
   * The real ring behind a gate: each user's first key request waits until the test opens the
   * gate (as a key that takes the privacy service long to create); `fail` makes it reject instead.
   */
  const slowKeys = () => {
    let open!: () => void;
    let fail!: (err: Error) => void;
    const gate = new Promise<void>((resolve, reject) => {
      open = resolve;
      fail = reject;
    });
    gate.catch(() => undefined);
    const source = {
      currentKey: async (scope: Parameters<DataKeyRing['currentKey']>[0]) => {
        await gate;
        return ring.currentKey(scope);
      },
      keyFor: ring.keyFor.bind(ring),
    };
    return { source, open, fail };
  };
  const lateRecords = (source: ReturnType<typeof slowKeys>['source'], late = { maxWaitMs: 5_000, maxRecords: 10 }) =>
    PredictionRecords.open(store, { retentionMs: HOUR, sealer: new AesGcmSealer({ keys: source }), keys: source, late });

  it('a record whose key comes after the wait is written when it comes; a find in the meantime waits for it', async () => {
    const slow = slowKeys();
    const late = await lateRecords(slow.source);
    const saved = await late.save('acme', [record('p1', 'user-a')], { deadline: Date.now() + 20 });
    expect(saved).toMatchObject({ stored: 0, keyUnavailable: 0, deferred: 1 });
    expect(late.stats()).toMatchObject({ stored: 0, pendingLate: 1 });
    expect(await (await docs()).count('acme')).toBe(0);
    // Feedback right after the answer: the find waits for the record rather than answering "unknown".
    const found = late.find('acme', 'p1', 'user-a', { deadline: Date.now() + 5_000 });
    // Another user naming the id does not wait, and finds nothing.
    expect(await late.find('acme', 'p1', 'user-b', { deadline: Date.now() + 5_000 })).toBeUndefined();
    slow.open();
    expect(await found).toEqual(record('p1', 'user-a'));
    expect(await saved.late).toEqual({ stored: 1, keyUnavailable: 0 });
    expect((await (await docs()).get('acme', 'p1'))!.data.sealed.algorithm).toBe(AES_256_GCM);
    expect(late.stats()).toMatchObject({ stored: 1, storedLate: 1, pendingLate: 0, keyUnavailable: 0 });
  });

  it("a find that cannot wait long enough for a late record answers UNAVAILABLE (retry), not that the id is unknown", async () => {
    const slow = slowKeys();
    const late = await lateRecords(slow.source);
    const saved = await late.save('acme', [record('p1', 'user-a')], { deadline: Date.now() + 20 });
    const err = await late.find('acme', 'p1', 'user-a', { deadline: Date.now() + 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/^the prediction could not be read: .*; retry$/);
    slow.open();
    expect(await saved.late).toMatchObject({ stored: 1 });
    expect(await late.find('acme', 'p1', 'user-a')).toEqual(record('p1', 'user-a'));
  });

  it('a late record is given up when its key fetch fails, outlasts maxWaitMs, or maxRecords are waiting already', async () => {
    const failing = slowKeys();
    const late = await lateRecords(failing.source, { maxWaitMs: 5_000, maxRecords: 2 });
    const first = await late.save('acme', [record('p1', 'user-a'), record('p2', 'user-b')], { deadline: Date.now() + 20 });
    expect(first).toMatchObject({ deferred: 2, keyUnavailable: 0 });
    // Two are waiting: a third is left out at once, as without late writes.
    const third = await late.save('acme', [record('p3', 'user-c')], { deadline: Date.now() + 20 });
    expect(third).toMatchObject({ stored: 0, keyUnavailable: 1 });
    expect(third.deferred).toBeUndefined();
    expect(third.keyError).toBeInstanceOf(DeadlineExceededError);
    failing.fail(new UnavailableError('privacy unreachable'));
    const outcome = await first.late!;
    expect(outcome).toMatchObject({ stored: 0, keyUnavailable: 2 });
    expect(outcome.keyError).toBeInstanceOf(UnavailableError);
    expect(late.stats()).toMatchObject({ stored: 0, keyUnavailable: 3, pendingLate: 0 });
    // A find after the failure waits for nothing and finds nothing.
    expect(await late.find('acme', 'p1', 'user-a')).toBeUndefined();

    const never = slowKeys();
    const brief = await lateRecords(never.source, { maxWaitMs: 30, maxRecords: 10 });
    const timedOut = await brief.save('acme', [record('p4', 'user-d')], { deadline: Date.now() + 10 });
    expect(await timedOut.late).toMatchObject({ stored: 0, keyUnavailable: 1, keyError: expect.any(DeadlineExceededError) });
    never.open();
    expect(await (await docs()).count('acme')).toBe(0);
  });

  it("erasing the user (or the tenant) while their record waits for a key: it is never written", async () => {
    const slow = slowKeys();
    const late = await lateRecords(slow.source);
    const saved = await late.save('acme', [record('p1', 'user-a'), record('p2', 'user-b')], { deadline: Date.now() + 20 });
    const other = await late.save('globex', [record('p3', 'user-a')], { deadline: Date.now() + 20 });
    expect(late.stats().pendingLate).toBe(3);
    expect(await late.deleteUser('acme', 'user-a')).toBe(0);
    expect(late.stats().pendingLate).toBe(2);
    expect(await late.deleteTenant('globex')).toBe(0);
    expect(await other.late).toMatchObject({ stored: 0, keyUnavailable: 1, keyError: expect.any(CancelledError) });
    slow.open();
    // user-b's record is written; user-a's never is.
    expect(await saved.late).toMatchObject({ stored: 1, keyUnavailable: 1 });
    expect(await late.find('acme', 'p1', 'user-a')).toBeUndefined();
    expect(await late.find('acme', 'p2', 'user-b')).toEqual(record('p2', 'user-b'));
    expect(await (await docs()).count('acme')).toBe(1);
    expect(await (await docs()).count('globex')).toBe(0);
  });

  it('close gives waiting records a grace period, then gives the rest up before the store closes', async () => {
    const slow = slowKeys();
    const late = await lateRecords(slow.source);
    const saved = await late.save('acme', [record('p1', 'user-a')], { deadline: Date.now() + 20 });
    setTimeout(() => slow.open(), 30);
    await late.close(2_000);
    expect(await saved.late).toMatchObject({ stored: 1 });
    const never = slowKeys();
    const closing = await lateRecords(never.source);
    const abandoned = await closing.save('acme', [record('p2', 'user-a')], { deadline: Date.now() + 20 });
    const started = Date.now();
    await closing.close(50);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await abandoned.late).toMatchObject({ stored: 0, keyUnavailable: 1 });
    expect(closing.stats().pendingLate).toBe(0);
    expect(await (await docs()).count('acme')).toBe(1);
  });

  it('without the key when reading, find rejects with UNAVAILABLE (it cannot tell whether the record is there)', async () => {
    await records.save('acme', [record('p1', 'user-a')]);
    const source = await unreachable();
    try {
      const blind = await PredictionRecords.open(store, { retentionMs: HOUR, sealer: new AesGcmSealer({ keys: source }) });
      const err = await blind.find('acme', 'p1', 'user-a', { deadline: Date.now() + 5_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/^the prediction could not be read: the user's data key could not be had in time \(the privacy service, which holds users' keys, is unreachable or slow\); retry$/);
      // Another user's or an unknown id is absent without asking for any key.
      expect(await blind.find('acme', 'p1', 'user-b')).toBeUndefined();
      expect(await blind.find('acme', 'nope', 'user-a')).toBeUndefined();
    } finally {
      source.close();
    }
  });

  it('reads a record stored unencrypted before issue 6 only where plaintext is allowed', async () => {
    const legacy = {
      input: v1.InputPayload.encode({ kind: { $case: 'text', value: 'old mail' } }).finish(),
      generalModel: { name: 'general', version: '3' },
      labels: ['ham', 'spam'],
      logits: [0, -1.25],
      probabilities: [0.75, 0.25],
      embedding: floatsToBytes([0.5, -0.25]),
      sparseDimension: 1 << 20,
      sparseIndices: uintsToBytes([3, 70_000]),
      sparseValues: floatsToBytes([0.5, 1]),
      label: 'spam',
      expiresAt: new Date(Date.now() + HOUR),
    };
    await (await store.collection({ name: 'predictions' })).put('acme', 'old', legacy, { user: 'user-a' });
    const expected: PredictionRecord = {
      predictionId: 'old',
      userPseudonym: 'user-a',
      input: { kind: { $case: 'text', value: 'old mail' } },
      general: { model: { name: 'general', version: '3' }, logits: [0, -1.25], probabilities: [0.75, 0.25], embedding: [0.5, -0.25] },
      labels: ['ham', 'spam'],
      sparse: { dimension: 1 << 20, indices: [3, 70_000], values: [0.5, 1] },
      label: 'spam',
    };
    expect(await records.find('acme', 'old', 'user-a')).toBeUndefined();
    const migrating = await PredictionRecords.open(store, { retentionMs: HOUR, sealer: new AesGcmSealer({ keys: ring, allowPlaintext: true }) });
    expect(await migrating.find('acme', 'old', 'user-a')).toEqual(expected);
    const noKeys = await PredictionRecords.open(store, { retentionMs: HOUR });
    expect(await noKeys.find('acme', 'old', 'user-a')).toEqual(expected);
  });
});
