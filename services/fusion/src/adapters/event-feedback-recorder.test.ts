import { randomBytes, randomUUID } from 'node:crypto';
import { AES_256_GCM, AesGcmSealer, DataKeyRing, InMemoryWrappedKeyStore, PrivacyDataKeySource, tenantKeysFromConfig } from '@aimass/crypto';
import { FEEDBACK_STREAM, createInProcessBus, decodeEvent, type InProcessEventBus, type LiveEvent } from '@aimass/events';
import { CancelledError, FailedPreconditionError, UnavailableError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { freePort } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventFeedbackRecorder, UNCONFIRMED_REFUSAL_MARGIN_MS } from './event-feedback-recorder.js';
import { isNotRecorded, type FeedbackToRecord } from './feedback-recorder.js';

const T = 'acme';
const USER = 'u'.repeat(32);

const feedbackOf = (eventId = randomUUID()): FeedbackToRecord => ({
  tenant: T,
  userPseudonym: USER,
  eventId,
  predictionId: '',
  input: { kind: { $case: 'text', value: 'MARKER-recorder free money' } },
  label: 'spam',
  general: { model: { name: 'general', version: '1' }, logits: [0, 2], probabilities: [0.1, 0.9], embedding: [0.5, 0.25] },
  sparseFeatures: { dimension: 16, indices: [1, 3], values: [1, 0.5] },
  idempotencyKey: '',
  occurredAt: new Date(),
});

const soon = (ms = 5_000) => ({ deadline: Date.now() + ms, signal: new AbortController().signal });

/** Sealing FeedbackRecorded with users' keys: real AES-256-GCM keys, the in-process bus. */
describe("EventFeedbackRecorder with users' keys", () => {
  let bus: InProcessEventBus;
  const published: LiveEvent[] = [];
  const kek = tenantKeysFromConfig({ default: randomBytes(32).toString('base64') });

  beforeEach(async () => {
    published.length = 0;
    bus = createInProcessBus();
    await bus.ensureStream(FEEDBACK_STREAM);
    await bus.subscribe('aimass.*.feedback.>', (e) => void published.push(e));
  });
  afterEach(async () => {
    await bus.close();
  });

  it("seals input, general output and features with the user's key, bound to the event id", async () => {
    const ring = new DataKeyRing({ kek, store: new InMemoryWrappedKeyStore() });
    const sealer = new AesGcmSealer({ keys: ring });
    const f = feedbackOf();
    await new EventFeedbackRecorder(bus, { sealer }).record(f, soon());
    expect(published).toHaveLength(1);
    expect(Buffer.from(published[0]!.data).includes('MARKER-recorder')).toBe(false);
    const event = decodeEvent('aimass.v1.FeedbackRecorded', published[0]!.data);
    for (const field of [event.input!, event.generalOutput!, event.sparseFeatures!]) expect(field.algorithm).toBe(AES_256_GCM);
    const scope = { tenant: T, userPseudonym: USER };
    expect(v1.InputPayload.decode(await sealer.open(scope, event.input!, f.eventId))).toEqual(f.input);
    expect(v1.SparseVector.decode(await sealer.open(scope, event.sparseFeatures!, f.eventId))).toEqual(f.sparseFeatures);
  });

  it('an erased user (no key created for them): FAILED_PRECONDITION, nothing published, a certain refusal', async () => {
    const ring = new DataKeyRing({ kek, store: new InMemoryWrappedKeyStore(), mayCreate: () => false });
    const err = await new EventFeedbackRecorder(bus, { sealer: new AesGcmSealer({ keys: ring }) }).record(feedbackOf(), soon()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toBe('feedback not recorded: the user has been erased, so no data of theirs can be encrypted and kept');
    expect(isNotRecorded(err)).toBe(true);
    expect(published).toEqual([]);
  });

  it('the privacy service unreachable, or slower than the call: UNAVAILABLE, nothing published, a certain refusal', async () => {
    const keys = new PrivacyDataKeySource({ address: `127.0.0.1:${await freePort()}`, callTimeoutMs: 2_000 });
    try {
      const recorder = new EventFeedbackRecorder(bus, { sealer: new AesGcmSealer({ keys }) });
      const down = await recorder.record(feedbackOf(), soon()).catch((e: unknown) => e);
      expect(down).toBeInstanceOf(UnavailableError);
      expect((down as Error).message).toMatch(/^feedback not recorded: the user's data key could not be had in time/);
      expect(isNotRecorded(down)).toBe(true);

      // The key fetch retries for longer than this call may take: refused at its deadline.
      const started = performance.now();
      const late = await recorder.record(feedbackOf(), soon(30)).catch((e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(500);
      expect(late).toBeInstanceOf(UnavailableError);
      expect(isNotRecorded(late)).toBe(true);

      const controller = new AbortController();
      const pending = recorder.record(feedbackOf(), { deadline: Date.now() + 5_000, signal: controller.signal });
      controller.abort();
      const cancelled = await pending.catch((e: unknown) => e);
      expect(cancelled).toBeInstanceOf(CancelledError);
      expect(isNotRecorded(cancelled)).toBe(true);
      expect(published).toEqual([]);
    } finally {
      keys.close();
    }
  });
});

describe('EventFeedbackRecorder, a stream that never confirms', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers UNAVAILABLE early enough for the answer to reach the caller before its deadline', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const bus = createInProcessBus();
    await bus.ensureStream(FEEDBACK_STREAM);
    // NATS reconnecting: the publish is sent and never acknowledged.
    const stuck = Object.assign(Object.create(bus) as InProcessEventBus, { publish: () => new Promise<never>(() => undefined) });
    try {
      const outcome = new EventFeedbackRecorder(stuck).record(feedbackOf(), soon(1_000)).catch((e: unknown) => e);
      let settled: unknown;
      void outcome.then((v) => (settled = v));
      await vi.advanceTimersByTimeAsync(1_000 - UNCONFIRMED_REFUSAL_MARGIN_MS - 1);
      expect(settled).toBeUndefined();
      await vi.advanceTimersByTimeAsync(2);
      expect(settled).toBeInstanceOf(UnavailableError);
      expect((settled as Error).message).toMatch(/did not confirm it within the call's deadline/);
      // The outcome is unknown (it may still be stored): the idempotency key stays claimed.
      expect(isNotRecorded(settled)).toBe(false);

      // A short call keeps three quarters of its time for the stream.
      const short = new EventFeedbackRecorder(stuck).record(feedbackOf(), soon(40)).catch((e: unknown) => e);
      let shortSettled: unknown;
      void short.then((v) => (shortSettled = v));
      await vi.advanceTimersByTimeAsync(29);
      expect(shortSettled).toBeUndefined();
      await vi.advanceTimersByTimeAsync(2);
      expect(shortSettled).toBeInstanceOf(UnavailableError);
    } finally {
      vi.useRealTimers();
      await bus.close();
    }
  });
});
