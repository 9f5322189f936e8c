import { randomBytes } from 'node:crypto';
import { ConsentCache, type ConsentDecisionView } from '@aimass/consent';
import { AesGcmSealer, DataKeyRing, InMemoryWrappedKeyStore, tenantKeysFromConfig } from '@aimass/crypto';
import { createInProcessBus, type InProcessEventBus } from '@aimass/events';
import { FailedPreconditionError, UnavailableError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsentCheckingPersonalModel, ConsentCheckingRecorder, ConsentCheckingRecords } from './consent.js';
import { isNotRecorded, type FeedbackRecorder, type FeedbackToRecord } from './feedback-recorder.js';
import type { ItemScore, PersonalScoreItem, PersonalScorer } from './personal-model-client.js';
import { PredictionRecords, type PredictionRecord } from './prediction-records.js';

const T = 'acme';
const YES = 'y'.repeat(32);
const NO = 'n'.repeat(32);
const OTHER = 'o'.repeat(32);

/** The privacy service as the cache's lookup sees it: who granted what; a gate to hold lookups. */
class FakeLookup {
  readonly granted = new Map<string, Set<'personalization' | 'training'>>();
  calls = 0;
  failing = false;
  gate: Promise<void> | undefined;

  readonly lookup = async (_tenant: string, pseudonym: string): Promise<ConsentDecisionView[]> => {
    this.calls++;
    await this.gate;
    if (this.failing) throw new Error('privacy unreachable');
    const purposes = this.granted.get(pseudonym) ?? new Set();
    return (['personalization', 'training'] as const).map((purpose) =>
      purposes.has(purpose) ? { purpose, state: 'granted', sequence: 1, isDefault: false } : { purpose, state: 'denied', sequence: 0, isDefault: true },
    );
  };
}

/** Records what reached the wrapped scorer; answers NO_MODEL for every item it is given. */
class FakeScorer implements PersonalScorer {
  readonly calls: string[][] = [];
  score(_tenant: string, items: readonly PersonalScoreItem[]): Promise<ItemScore[]> {
    this.calls.push(items.map((i) => i.userPseudonym));
    return Promise.resolve(
      items.map((item) => {
        item.features();
        return { kind: 'answered', result: { itemId: item.itemId, status: v1.ScoreStatus.SCORE_STATUS_NO_MODEL } as v1.ScoreResult };
      }),
    );
  }
}

function item(itemId: string, userPseudonym: string, featurized: string[]): PersonalScoreItem {
  return {
    itemId,
    userPseudonym,
    general: { model: undefined, logits: [], probabilities: [], embedding: [] },
    features: () => {
      featurized.push(itemId);
      return { dimension: 0, indices: [], values: [] };
    },
  };
}

const soon = (ms = 5_000) => ({ deadline: Date.now() + ms, signal: new AbortController().signal });

describe('ConsentCheckingPersonalModel', () => {
  let bus: InProcessEventBus;
  let cache: ConsentCache;
  let privacy: FakeLookup;
  let inner: FakeScorer;
  let scorer: ConsentCheckingPersonalModel;

  beforeEach(async () => {
    bus = createInProcessBus();
    privacy = new FakeLookup();
    privacy.granted.set(YES, new Set(['personalization']));
    cache = await ConsentCache.start({ bus, lookup: privacy.lookup });
    inner = new FakeScorer();
    scorer = new ConsentCheckingPersonalModel(inner, cache);
  });
  afterEach(async () => {
    await cache.close();
    await bus.close();
  });

  it('sends only the items of users who granted personalization, keeps the order, and featurizes nothing it withholds', async () => {
    const featurized: string[] = [];
    const answers = await scorer.score(T, [item('0', NO, featurized), item('1', YES, featurized), item('2', OTHER, featurized), item('3', YES, featurized)], soon());
    expect(inner.calls).toEqual([[YES, YES]]);
    expect(featurized).toEqual(['1', '3']);
    expect(answers.map((a) => a.kind)).toEqual(['withheld', 'answered', 'withheld', 'answered']);
    expect(answers[0]).toEqual({ kind: 'withheld', detail: expect.stringMatching(/^the user has not granted personalization consent/) });
    expect(answers.flatMap((a) => (a.kind === 'answered' ? [a.result.itemId] : []))).toEqual(['1', '3']);
    // One lookup per user, then answers from memory.
    expect(privacy.calls).toBe(3);
    await scorer.score(T, [item('0', NO, featurized), item('1', YES, featurized)], soon());
    expect(privacy.calls).toBe(3);
  });

  it('does not call the wrapped scorer when no item may be sent', async () => {
    const answers = await scorer.score(T, [item('0', NO, []), item('1', OTHER, [])], soon());
    expect(inner.calls).toEqual([]);
    expect(answers.every((a) => a.kind === 'withheld')).toBe(true);
  });

  it('waits for a lookup no longer than the call may, withholds meanwhile, and keeps the answer for the next call', async () => {
    let open!: () => void;
    privacy.gate = new Promise((r) => (open = r));
    const started = performance.now();
    const answers = await scorer.score(T, [item('0', YES, [])], soon(30));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(answers).toEqual([{ kind: 'withheld', detail: expect.stringMatching(/within the personal stage's deadline/) }]);
    expect(inner.calls).toEqual([]);
    open();
    await new Promise((r) => setTimeout(r, 5));
    expect((await scorer.score(T, [item('0', YES, [])], soon()))[0]!.kind).toBe('answered');
  });

  it('withholds when the caller has gone, and fails closed when the privacy service cannot be read', async () => {
    let open!: () => void;
    privacy.gate = new Promise((r) => (open = r));
    const controller = new AbortController();
    const pending = scorer.score(T, [item('0', YES, [])], { deadline: Date.now() + 5_000, signal: controller.signal });
    controller.abort();
    expect((await pending)[0]!.kind).toBe('withheld');
    open();

    privacy.gate = undefined;
    privacy.failing = true;
    const answers = await scorer.score(T, [item('0', OTHER, [])], soon());
    expect(answers).toEqual([{ kind: 'withheld', detail: expect.stringMatching(/^personalization consent could not be verified \(the privacy service is unreachable\)/) }]);
  });
});

describe('ConsentCheckingRecorder', () => {
  let bus: InProcessEventBus;
  let cache: ConsentCache;
  let privacy: FakeLookup;
  const recorded: string[] = [];
  const inner: FeedbackRecorder = {
    record: (f) => {
      recorded.push(f.userPseudonym);
      return Promise.resolve({ duplicate: false });
    },
  };
  let recorder: ConsentCheckingRecorder;
  const feedbackOf = (userPseudonym: string) => ({ tenant: T, userPseudonym }) as FeedbackToRecord;

  beforeEach(async () => {
    recorded.length = 0;
    bus = createInProcessBus();
    privacy = new FakeLookup();
    privacy.granted.set(YES, new Set(['training']));
    cache = await ConsentCache.start({ bus, lookup: privacy.lookup });
    recorder = new ConsentCheckingRecorder(inner, cache);
  });
  afterEach(async () => {
    await cache.close();
    await bus.close();
  });

  it('hands granted feedback on', async () => {
    expect(await recorder.record(feedbackOf(YES), soon())).toEqual({ duplicate: false });
    expect(recorded).toEqual([YES]);
  });

  it('refuses feedback without training consent before the wrapped recorder sees it, marked as not recorded', async () => {
    privacy.granted.set(NO, new Set(['personalization']));
    const err = await recorder.record(feedbackOf(NO), soon()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toMatch(/^the user has not granted training consent: /);
    expect(isNotRecorded(err)).toBe(true);
    expect(recorded).toEqual([]);
  });

  it('answers UNAVAILABLE, marked as not recorded, when consent cannot be verified (unreachable, or too slow for the call)', async () => {
    privacy.failing = true;
    const unreachable = await recorder.record(feedbackOf(YES), soon()).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(UnavailableError);
    expect(isNotRecorded(unreachable)).toBe(true);

    privacy.failing = false;
    privacy.gate = new Promise(() => undefined);
    const late = await recorder.record(feedbackOf(OTHER), soon(20)).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(UnavailableError);
    expect((late as Error).message).toMatch(/within the call's deadline/);
    expect(isNotRecorded(late)).toBe(true);
    expect(recorded).toEqual([]);
  });
});

describe('ConsentCheckingRecords (a real record store on SQLite, real keys)', () => {
  let bus: InProcessEventBus;
  let cache: ConsentCache;
  let privacy: FakeLookup;
  let store: DocumentStore;
  let ring: DataKeyRing;
  let records: ConsentCheckingRecords;

  const record = (predictionId: string, userPseudonym: string): PredictionRecord => ({
    predictionId,
    userPseudonym,
    input: { kind: { $case: 'text', value: `mail ${predictionId}` } },
    general: { model: { name: 'general', version: '1' }, logits: [0, 1], probabilities: [0.25, 0.75], embedding: [0.5] },
    labels: ['ham', 'spam'],
    label: 'spam',
  });

  beforeEach(async () => {
    bus = createInProcessBus();
    privacy = new FakeLookup();
    privacy.granted.set(YES, new Set(['training']));
    privacy.granted.set(NO, new Set(['personalization']));
    cache = await ConsentCache.start({ bus, lookup: privacy.lookup });
    store = await openSqliteStore({ path: ':memory:' });
    ring = new DataKeyRing({ kek: tenantKeysFromConfig({ default: randomBytes(32).toString('base64') }), store: new InMemoryWrappedKeyStore() });
    const inner = await PredictionRecords.open(store, { retentionMs: 3_600_000, sealer: new AesGcmSealer({ keys: ring }), keys: ring });
    records = new ConsentCheckingRecords(inner, cache);
  });
  afterEach(async () => {
    await store.close();
    await cache.close();
    await bus.close();
  });

  it('keeps records only for users who granted training: no record and no key for the others', async () => {
    const saved = await records.save(T, [record('p0', NO), record('p1', YES), record('p2', OTHER)], { deadline: Date.now() + 5_000 });
    expect(saved).toEqual({ stored: 1, withoutConsent: 2, keyUnavailable: 0 });
    expect(await (await store.collection({ name: 'predictions' })).count(T)).toBe(1);
    expect(ring.stats().creates).toBe(1);
    expect(records.stats()).toEqual({ stored: 1, storedLate: 0, pendingLate: 0, withoutConsent: 2, keyUnavailable: 0, unreadable: 0 });
    expect(await records.find(T, 'p1', YES)).toEqual({ ...record('p1', YES), sparse: undefined });
  });

  it('warms keys only for users known (from memory) to consent', async () => {
    records.warm(T, [YES, NO]);
    await new Promise((r) => setTimeout(r, 10));
    expect(ring.stats().creates).toBe(0);
    await cache.check(T, YES, 'training');
    await cache.check(T, NO, 'training');
    records.warm(T, [YES, NO]);
    await new Promise((r) => setTimeout(r, 10));
    expect(ring.stats().creates).toBe(1);
  });

  it('refuses a lookup without training consent before reading the record (also one kept before a withdrawal)', async () => {
    await records.save(T, [record('p1', YES)]);
    privacy.granted.set(YES, new Set());
    cache.forget(T, YES);
    const err = await records.find(T, 'p1', YES, { deadline: Date.now() + 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toMatch(/^the user has not granted training consent: /);

    privacy.failing = true;
    cache.forget(T, YES);
    expect(await records.find(T, 'p1', YES, { deadline: Date.now() + 5_000 }).catch((e: unknown) => e)).toBeInstanceOf(UnavailableError);
  });

  it('keeps no record when consent cannot be verified within the wait', async () => {
    privacy.gate = new Promise(() => undefined);
    const started = performance.now();
    expect(await records.save(T, [record('p1', YES)], { deadline: Date.now() + 20 })).toEqual({ stored: 0, withoutConsent: 1, keyUnavailable: 0 });
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
