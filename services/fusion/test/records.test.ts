import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FeedbackKeys } from '../src/adapters/feedback-keys.js';
import { PredictionRecords, type PredictionRecord } from '../src/adapters/prediction-records.js';
import { KnownTenants } from '../src/adapters/records.js';

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
    await records.save('acme', [record('p1', 'user-a'), record('p2', 'user-b')], now);
    expect(await records.find('acme', 'p1', 'user-a', now)).toEqual(record('p1', 'user-a'));
    expect(await records.find('acme', 'p1', 'user-b', now)).toBeUndefined();
    expect(await records.find('other', 'p1', 'user-a', now)).toBeUndefined();
    expect(await records.find('acme', 'p1', 'user-a', new Date(now.getTime() + HOUR))).toBeUndefined();
    // Owned by the pseudonym, so an erasure of the user removes them.
    const collection = await store.collection({ name: 'predictions' });
    expect(await collection.deleteByUser('acme', 'user-a')).toBe(1);
    expect(await records.find('acme', 'p1', 'user-a', now)).toBeUndefined();
  });

  it('keeps no sparse features for a prediction that did not compute them', async () => {
    const records = await PredictionRecords.open(store, { retentionMs: HOUR });
    const { sparse: _, ...withoutFeatures } = record('p-skipped', 'user-a');
    await records.save('acme', [withoutFeatures]);
    const found = await records.find('acme', 'p-skipped', 'user-a');
    expect(found).toEqual(withoutFeatures);
    expect(found!.sparse).toBeUndefined();
    const doc = await (await store.collection<Record<string, unknown>>({ name: 'predictions' })).get('acme', 'p-skipped');
    expect(Object.keys(doc!.data).filter((k) => k.startsWith('sparse'))).toEqual([]);
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
    await records.save('acme', Array.from({ length: 700 }, (_, i) => record(`old${i}`, 'u')), t0);
    await records.save('acme', [record('new', 'u')], new Date(t0.getTime() + 2 * HOUR));
    expect(await records.prune('acme', new Date(t0.getTime() + HOUR - 1))).toBe(0);
    expect(await records.prune('acme', new Date(t0.getTime() + HOUR))).toBe(700);
    expect(await records.find('acme', 'new', 'u', t0)).toBeDefined();
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
