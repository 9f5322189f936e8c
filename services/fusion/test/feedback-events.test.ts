import { status, type ServiceError } from '@grpc/grpc-js';
import { FEEDBACK_STREAM, PLAINTEXT_ALGORITHM, connectNatsBus, feedbackSubject, plaintextSealer, type NatsEventBus, type PayloadSealer, type SealScope } from '@aimass/events';
import { createPersonalFeaturizer } from '@aimass/ml';
import { Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { NatsServer, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedFeedbackEventId, feedbackFingerprint, idempotencyRecordId } from '../src/domain/ids.js';
import { personalInputOf } from '../src/domain/personal-input.js';
import { TEST_SECRET, type TestFusion } from './support/fusion.js';
import { callError, feedback, mail, predict, text, type InferenceClient } from './support/grpc.js';
import { startStack, type Stack } from './support/stack.js';
import { FeedbackStreamReader, type StoredFeedback } from './support/stream.js';

const FEEDBACK_TYPE = 'aimass.v1.FeedbackRecorded';

/**
 * A reversible stand-in for the privacy service's per-user keys (issue 6), recording what it was
 * asked to seal: the recorder must seal every personal field with the user's scope, bound to the
 * event id. (The production default, `plaintextSealer`, is what the other fusion here uses.)
 */
function recordingSealer(): PayloadSealer & { calls: { scope: SealScope; associatedData: string }[] } {
  const mask = (bytes: Uint8Array, ad: string) => Buffer.from(Uint8Array.from(bytes, (b, i) => b ^ ad.charCodeAt(i % ad.length)));
  const calls: { scope: SealScope; associatedData: string }[] = [];
  return {
    calls,
    seal: (scope, plaintext, associatedData) => {
      calls.push({ scope, associatedData });
      return Promise.resolve({ keyId: `key-${scope.userPseudonym}`, algorithm: 'TEST-XOR', nonce: Buffer.alloc(0), ciphertext: mask(plaintext, associatedData) });
    },
    open: (scope, payload, associatedData) => {
      if (payload.algorithm !== 'TEST-XOR' || payload.keyId !== `key-${scope.userPseudonym}`) return Promise.reject(new Error('not sealed by this sealer'));
      return Promise.resolve(mask(payload.ciphertext, associatedData));
    },
  };
}

describe('Feedback over the event bus (real nats-server)', () => {
  let nats: NatsServer;
  let bus: NatsEventBus;
  let stack: Stack;
  let fusion: TestFusion;
  let client: InferenceClient;
  let reader: FeedbackStreamReader;
  const pseudonymizer = new Pseudonymizer({ rootSecret: TEST_SECRET });
  const pseudonym = (userId: string, tenant = 'acme') => pseudonymizer.pseudonymize(tenant, userId);
  const eventsOf = (userId: string) => reader.events(pseudonym(userId));
  const open = async (sealer: PayloadSealer, e: StoredFeedback, field: 'input' | 'generalOutput' | 'sparseFeatures') =>
    sealer.open({ tenant: e.event.envelope.tenant, userPseudonym: e.event.envelope.userPseudonym }, e.event[field]!, e.event.envelope.eventId);

  beforeAll(async () => {
    nats = await NatsServer.start();
    // A short publish bound (≈ 1.1 s) and quick reconnects keep the outage test short.
    bus = await connectNatsBus({ servers: nats.url, name: 'fusion-test', publishTimeoutMs: 500, publishRetries: 1, publishRetryDelayMs: 100, reconnectTimeWaitMs: 200 });
    stack = await startStack();
    ({ fusion, client } = await stack.addFusion({}, {}, { bus }));
    reader = await FeedbackStreamReader.open(bus);
  });
  afterAll(async () => {
    await stack?.stop();
    await bus?.close();
    await nats?.dispose();
  });

  it('ensures the feedback stream at start', async () => {
    expect((await reader.events()).length).toBe(0);
    // Declared with the catalogue's duplicate window (the retry horizon of key-less feedback).
    const info = await reader.info();
    expect(info.config.subjects).toEqual(FEEDBACK_STREAM.subjects);
    expect(info.config.duplicate_window).toBe(FEEDBACK_STREAM.duplicateWindowMs * 1_000_000);
  });

  it("publishes FeedbackRecorded on the user's pseudonymous subject, stored before the call answers", async () => {
    const rawId = 'Olga-7781';
    const input = mail('shop@deals.example', 'weekly offers', 'our newsletter, this week only');
    const p = await predict(client, rawId, input, { includeEmbedding: true, includeComponents: true });
    const res = await feedback(client, { userId: rawId, predictionId: p.predictionId, label: 'spam', idempotencyKey: 'ev-1' });
    expect(res).toMatchObject({ accepted: true, duplicate: false });

    // Read as soon as the call returned: the stream already holds the event.
    const [stored, ...more] = await eventsOf(rawId);
    expect(more).toEqual([]);
    expect(stored).toBeDefined();
    const e = stored!;
    const who = pseudonym(rawId);
    expect(e.subject).toBe(feedbackSubject('acme', who));
    expect(e.subject.startsWith('aimass.acme.feedback.')).toBe(true);
    expect(e.subject.endsWith(`.${who}`)).toBe(true);
    // The person's id appears nowhere on the wire: not in the subject, the headers or the payload.
    expect(e.subject).not.toContain(rawId);
    expect(JSON.stringify(e.headers)).not.toContain(rawId);
    expect(Buffer.from(e.data).includes(rawId)).toBe(false);
    expect(e.headers['Nats-Msg-Id']).toEqual([res.eventId]);
    expect(e.headers['aimass-event-type']).toEqual([FEEDBACK_TYPE]);

    expect(e.event.envelope).toMatchObject({ eventId: res.eventId, tenant: 'acme', userPseudonym: who, producer: 'fusion', eventType: FEEDBACK_TYPE, schemaVersion: 1 });
    // The caller's key stays in fusion: the event carries its digest (keys can hold personal data).
    expect(e.event).toMatchObject({ predictionId: p.predictionId, label: 'spam', idempotencyKey: idempotencyRecordId(who, 'ev-1'), generalModel: { name: 'general', version: '1' } });

    // Sealed (algorithm NONE by default), and each opens to what was predicted on.
    const sealer = plaintextSealer();
    for (const field of ['input', 'generalOutput', 'sparseFeatures'] as const) expect(e.event[field]!.algorithm).toBe(PLAINTEXT_ALGORITHM);
    expect(v1.InputPayload.decode(await open(sealer, e, 'input'))).toEqual(input);
    const general = v1.GeneralOutput.decode(await open(sealer, e, 'generalOutput'));
    expect(general.model).toEqual({ name: 'general', version: '1' });
    expect(general.embedding).toEqual(p.embedding);
    expect(general.probabilities.map((x) => Number(x.toFixed(5)))).toEqual(p.general!.probabilities.map((c) => Number(c.probability.toFixed(5))));
    expect(general.logits[0]).toBe(0);
    const sparse = v1.SparseVector.decode(await open(sealer, e, 'sparseFeatures'));
    const expected = createPersonalFeaturizer().featurize(personalInputOf(input));
    expect(sparse.indices.length).toBeGreaterThan(0);
    expect(sparse).toEqual({ dimension: expected.dimension, indices: expected.indices, values: Array.from(expected.values, Math.fround) });
  });

  it('feedback on a direct input carries that input and no prediction id', async () => {
    const input = text('cheap pills free offer today');
    const res = await feedback(client, { userId: 'pavel', input, label: 'ham', idempotencyKey: 'direct-ev' });
    const [e] = await eventsOf('pavel');
    expect(e!.event).toMatchObject({ predictionId: '', label: 'ham', envelope: { eventId: res.eventId } });
    expect(v1.InputPayload.decode(await open(plaintextSealer(), e!, 'input'))).toEqual(input);
  });

  it('the same idempotency key twice stores one event; the second answer is a duplicate with the same id', async () => {
    const p = await predict(client, 'quinn', text('notes from the team meeting'));
    const first = await feedback(client, { userId: 'quinn', predictionId: p.predictionId, label: 'ham', idempotencyKey: 'twice' });
    const again = await feedback(client, { userId: 'quinn', predictionId: p.predictionId, label: 'ham', idempotencyKey: 'twice' });
    expect(again).toEqual({ accepted: true, eventId: first.eventId, duplicate: true });
    expect((await eventsOf('quinn')).map((e) => e.event.envelope.eventId)).toEqual([first.eventId]);
  });

  it('key-less feedback sent twice is stored once, under an id derived from user, target and label', async () => {
    const p = await predict(client, 'rhea', text('project review moved to tomorrow'));
    const first = await feedback(client, { userId: 'rhea', predictionId: p.predictionId, label: 'spam' });
    const again = await feedback(client, { userId: 'rhea', predictionId: p.predictionId, label: 'spam' });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ accepted: true, eventId: first.eventId, duplicate: true });
    expect(first.eventId).toBe(derivedFeedbackEventId('acme', pseudonym('rhea'), feedbackFingerprint({ predictionId: p.predictionId }, 'spam')));
    // Another label is other feedback (a correction), hence another event.
    const other = await feedback(client, { userId: 'rhea', predictionId: p.predictionId, label: 'ham' });
    expect(other.eventId).not.toBe(first.eventId);
    expect((await eventsOf('rhea')).map((e) => e.event.envelope.eventId)).toEqual([first.eventId, other.eventId]);
    // Key-less feedback on the same input twice: one event too.
    const a = await feedback(client, { userId: 'rhea', input: text('lunch on friday'), label: 'ham' });
    const b = await feedback(client, { userId: 'rhea', input: text('lunch on friday'), label: 'ham' });
    expect(b).toEqual({ accepted: true, eventId: a.eventId, duplicate: true });
    expect(await eventsOf('rhea')).toHaveLength(3);
  });

  it('a rejected call (a label outside the model’s labels) publishes and stores nothing', async () => {
    const keys = await (await fusion.store.collection({ name: 'feedback_keys' })).count('acme');
    const p = await predict(client, 'sami', text('free money'));
    for (const target of [{ predictionId: p.predictionId }, { input: text('free money') }]) {
      const err = await callError(feedback(client, { userId: 'sami', ...target, label: 'junk', idempotencyKey: 'bad' }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toBe("label 'junk' is not one of the general model's labels: ham, spam");
    }
    expect(await eventsOf('sami')).toEqual([]);
    expect(await (await fusion.store.collection({ name: 'feedback_keys' })).count('acme')).toBe(keys);
  });

  it('seals input, general output and sparse features with the injected sealer, in the user scope, bound to the event id', async () => {
    const sealer = recordingSealer();
    const sealed = await stack.addFusion({}, {}, { bus, sealer });
    const input = text('claim your free prize offer');
    const res = await feedback(sealed.client, { userId: 'tara', input, label: 'spam', idempotencyKey: 'sealed-1' });
    const [e] = await eventsOf('tara');
    const scope = { tenant: 'acme', userPseudonym: pseudonym('tara') };
    expect(sealer.calls).toEqual([0, 1, 2].map(() => ({ scope, associatedData: res.eventId })));
    for (const field of ['input', 'generalOutput', 'sparseFeatures'] as const) expect(e!.event[field]).toMatchObject({ algorithm: 'TEST-XOR', keyId: `key-${scope.userPseudonym}` });
    expect(Buffer.from(e!.data).includes('claim your free prize')).toBe(false);
    expect(v1.InputPayload.decode(await open(sealer, e!, 'input'))).toEqual(input);
    // Bound to its event: under another event id it does not open to the input.
    const replayed = await sealer.open(scope, e!.event.input!, derivedFeedbackEventId('acme', scope.userPseudonym, 'x'));
    expect(Buffer.from(replayed).equals(Buffer.from(v1.InputPayload.encode(input).finish()))).toBe(false);
  });

  it('nats-server restarted during intake: every OK is stored, calls in the outage get UNAVAILABLE, their retries store exactly one event each', async () => {
    interface Attempt {
      readonly userId: string;
      readonly key: string;
      readonly input: v1.InputPayload;
      readonly phase: 'before' | 'outage' | 'after';
      ok?: v1.FeedbackResponse;
      error?: ServiceError;
    }
    const users = ['ulla', 'vera', 'wim'];
    const attempts: Attempt[] = [];
    let phase: Attempt['phase'] = 'before';
    let stop = false;
    const loop = async (worker: number) => {
      for (let i = 0; !stop; i++) {
        const attempt: Attempt = { userId: users[worker]!, key: `restart-${worker}-${i}`, input: text(`team meeting notes number ${worker}-${i}`), phase };
        attempts.push(attempt);
        try {
          attempt.ok = await feedback(client, { userId: attempt.userId, input: attempt.input, label: 'ham', idempotencyKey: attempt.key }, { deadlineMs: 15_000 });
        } catch (err) {
          attempt.error = err as ServiceError;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const count = (p: (a: Attempt) => boolean) => attempts.filter(p).length;
    const loops = users.map((_, w) => loop(w));

    await waitUntil(() => count((a) => a.ok !== undefined) >= 6, 'some feedback accepted before the outage');
    await nats.kill();
    phase = 'outage';
    await waitUntil(() => count((a) => a.error !== undefined) >= 2 * users.length, "calls refused during the outage", 15_000);
    await nats.restart();
    phase = 'after';
    await waitUntil(() => count((a) => a.phase === 'after' && a.ok !== undefined) >= 6, 'feedback accepted after the restart', 20_000);
    stop = true;
    await Promise.all(loops);

    // Nothing but OK and UNAVAILABLE, with the actionable message; OK again once NATS is back.
    const failed = attempts.filter((a) => a.error);
    for (const a of failed) {
      expect(a.error!.code, a.error!.details).toBe(status.UNAVAILABLE);
      expect(a.error!.details).toMatch(/^feedback not recorded: the event stream is unreachable; retry with the same idempotency_key/);
    }
    expect(count((a) => a.phase === 'before' && a.ok !== undefined)).toBeGreaterThan(0);

    const idsOf = async () => new Map((await Promise.all(users.map(eventsOf))).flat().map((e) => [e.event.envelope.eventId, e]));
    const acked = attempts.filter((a) => a.ok);
    const afterOutage = await idsOf();
    // No acknowledged feedback lost: every OK answer's event is in the stream, once.
    for (const a of acked) expect(afterOutage.has(a.ok!.eventId), `${a.key} (${a.phase})`).toBe(true);
    expect(new Set(acked.map((a) => a.ok!.eventId)).size).toBe(acked.length);
    // A refused call may still have reached the stream (its publish was buffered and sent on
    // reconnect: "unavailable" means unknown), never more than once.
    expect(afterOutage.size).toBeGreaterThanOrEqual(acked.length);
    expect(afterOutage.size).toBeLessThanOrEqual(attempts.length);

    // The refused calls, retried with their keys, now succeed; each key ends with one event.
    for (const a of failed) {
      a.ok = await feedback(client, { userId: a.userId, input: a.input, label: 'ham', idempotencyKey: a.key });
      expect(a.ok.accepted).toBe(true);
    }
    const final = await Promise.all(users.map(eventsOf)).then((lists) => lists.flat());
    const ids = attempts.map((a) => a.ok!.eventId);
    expect(new Set(ids).size).toBe(attempts.length);
    expect(final.map((e) => e.event.envelope.eventId).sort()).toEqual([...ids].sort());
    for (const a of attempts) {
      const [e] = final.filter((x) => x.event.envelope.eventId === a.ok!.eventId);
      expect(e!.event.idempotencyKey).toBe(idempotencyRecordId(pseudonym(a.userId), a.key));
    }
  });
});
