import { PLAINTEXT_ALGORITHM, connectNatsBus, modelUpdatedSubject, plaintextSealer, type NatsEventBus } from '@aimass/events';
import { createPersonalFeaturizer } from '@aimass/ml';
import { Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { NatsServer, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectTrainingRecorder, type FeedbackRecorder, type FeedbackToRecord } from '../src/adapters/feedback-recorder.js';
import { PersonalModelClient } from '../src/adapters/personal-model-client.js';
import { generalLogits } from '../src/domain/logits.js';
import { personalFeatures } from '../src/domain/personal-input.js';
import { decodeRecordBody, type RecordBody } from '../src/domain/record-body.js';
import { ScoreLog } from './support/calls.js';
import { TEST_SECRET, type TestFusion } from './support/fusion.js';
import { call, feedback, mail, options, predict, type InferenceClient } from './support/grpc.js';
import { startStack, type Stack } from './support/stack.js';
import { FeedbackStreamReader } from './support/stream.js';

const R = v1.FallbackReason;
const S = v1.FusionStrategy;
const Role = v1.ModelRole;
const Stage = v1.Stage;
const NO_MODEL_DETAIL = 'the user has no personal model yet: feedback creates one';
const pseudonymizer = new Pseudonymizer({ rootSecret: TEST_SECRET });
const pseudonym = (userId: string) => pseudonymizer.pseudonymize('acme', userId);
const featurizer = createPersonalFeaturizer();

/** A mail with the headers personal features are made of (sender, list, reply-to). */
const newsletter = (i: number | string) =>
  mail('news@shop.example', `weekly offers ${i}`, `our newsletter, this week only ${i}`, { 'list-id': '<offers.shop.example>', 'reply-to': 'sales@shop.example' });

/** What must not depend on whether Score was asked: everything but the id, the timings and the fallback's detail. */
function answerOf(p: v1.Prediction) {
  const round = (ps: readonly v1.ClassProbability[]) => ps.map((c) => ({ ...c, probability: Number(c.probability.toFixed(6)) }));
  return {
    label: p.label,
    probabilities: round(p.probabilities),
    general: p.general ? { ...p.general, probabilities: round(p.general.probabilities) } : undefined,
    personal: p.personal,
    models: p.provenance!.models,
    requested: p.provenance!.requestedStrategy,
    applied: p.provenance!.appliedStrategy,
    fallbacks: p.provenance!.fallbacks.map((f) => ({ reason: f.reason, role: f.role })),
  };
}

const stagesOf = (p: v1.Prediction) => p.provenance!.timings.map((t) => t.stage);
const details = (p: v1.Prediction) => p.provenance!.fallbacks.map((f) => f.detail);

/** The body of a stored prediction record (sealed with algorithm NONE here: no keys configured). */
async function recordOf(fusion: TestFusion, predictionId: string): Promise<RecordBody> {
  const doc = await (await fusion.store.collection<{ sealed: { algorithm: string; ciphertext: Uint8Array } }>({ name: 'predictions' })).get('acme', predictionId);
  expect(doc).toBeDefined();
  expect(doc!.data.sealed.algorithm).toBe(PLAINTEXT_ALGORITHM);
  return decodeRecordBody(doc!.data.sealed.ciphertext);
}

/** The features a record keeps (float32), computed from the input. */
function expectedFeatures(input: v1.InputPayload): v1.SparseVector {
  const f = personalFeatures(featurizer, input);
  return { ...f, values: f.values.map(Math.fround) };
}

describe('known-no-model cache without an event bus', () => {
  let stack: Stack;
  const log = new ScoreLog();
  /** What the caching fusion's Feedback handed to the (real, direct-training) recorder. */
  const recorded: FeedbackToRecord[] = [];
  let trainer: PersonalModelClient;
  let cached: { fusion: TestFusion; client: InferenceClient };

  beforeAll(async () => {
    stack = await startStack();
    trainer = new PersonalModelClient(stack.personal.address);
    const direct = new DirectTrainingRecorder(trainer);
    const recorder: FeedbackRecorder = {
      record: (f, o) => {
        recorded.push(f);
        return direct.record(f, o);
      },
    };
    // A TTL far longer than any test: whatever drops an entry here is not its expiry.
    cached = await stack.addFusion({ personalModel: { noModelCacheTtlMs: 60_000 } }, {}, { ...log.deps, recorder });
  });
  afterAll(async () => {
    trainer?.close();
    await stack?.stop();
  });

  it('asks Score once for a user without a model, then answers the same without it', async () => {
    const who = pseudonym('nomo');
    const input = newsletter(1);
    const first = await predict(cached.client, 'nomo', input, { includeComponents: true });
    expect(log.callsFor(who)).toBe(1);
    const again = [await predict(cached.client, 'nomo', input, { includeComponents: true }), await predict(cached.client, 'nomo', input, { includeComponents: true })];
    expect(log.callsFor(who)).toBe(1);

    expect(first.provenance!.fallbacks).toEqual([{ reason: R.FALLBACK_REASON_NO_PERSONAL_MODEL, role: Role.MODEL_ROLE_PERSONAL, detail: NO_MODEL_DETAIL }]);
    expect(first.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(stagesOf(first)).toContain(Stage.STAGE_PERSONAL_MODEL);
    for (const p of again) {
      expect(answerOf(p)).toEqual(answerOf(first));
      expect(details(p)).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
      // The personal model was not consulted at all.
      expect(stagesOf(p)).not.toContain(Stage.STAGE_PERSONAL_MODEL);
      expect(p.predictionId).not.toBe(first.predictionId);
    }
    expect(cached.fusion.noModelStats()).toEqual({
      ttlMs: 60_000,
      events: undefined,
      cache: { entries: 1, hits: 2, remembered: 1, refused: 0, invalidations: 0, clears: 0, evictions: 0 },
    });
  });

  it('a batch sends Score only the items of users who may have a model', async () => {
    for (let i = 0; i < 3; i++) await feedback(stack.client, { userId: 'has-model', input: newsletter(`t${i}`), label: 'ham' });
    const batch = (userIds: string[]) =>
      call(cached.client, cached.client.predictBatch, {
        items: userIds.map((userId, i) => ({ itemId: `i${i}`, userId, input: newsletter(`b${i}`) })),
        options: options(),
      }).then((r) => r.results.map((x) => (x.outcome as { $case: 'prediction'; value: v1.Prediction }).value));

    let mark = log.requests.length;
    const [nomo, withModel, newbie] = await batch(['nomo', 'has-model', 'newbie']);
    expect(log.usersSince(mark)).toEqual([pseudonym('has-model'), pseudonym('newbie')]);
    expect(details(nomo!)).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    expect(withModel!.provenance).toMatchObject({ appliedStrategy: S.FUSION_STRATEGY_STACKING, fallbacks: [] });
    expect(details(newbie!)).toEqual([NO_MODEL_DETAIL]);

    mark = log.requests.length;
    const second = await batch(['nomo', 'has-model', 'newbie']);
    expect(log.usersSince(mark)).toEqual([pseudonym('has-model')]);
    expect(second.map(details)).toEqual([[`${NO_MODEL_DETAIL} (cached)`], [], [`${NO_MODEL_DETAIL} (cached)`]]);
  });

  it('neither GENERAL_ONLY nor a cached user computes the personal features; only a prediction that asked Score keeps them', async () => {
    const computed = await predict(cached.client, 'plain', newsletter(2));
    const skipped = await predict(cached.client, 'plain', newsletter(2));
    const generalOnly = await predict(cached.client, 'general-only', newsletter(2), { strategy: S.FUSION_STRATEGY_GENERAL_ONLY });
    expect(log.callsFor(pseudonym('plain'))).toBe(1);
    expect(log.callsFor(pseudonym('general-only'))).toBe(0);
    expect(generalOnly.provenance).toMatchObject({ appliedStrategy: S.FUSION_STRATEGY_GENERAL_ONLY, fallbacks: [] });

    const kept = await recordOf(cached.fusion, computed.predictionId);
    expect(kept.sparse).toEqual(expectedFeatures(newsletter(2)));
    expect(kept.sparse!.dimension).toBe(featurizer.dimension);
    for (const p of [skipped, generalOnly]) {
      const record = await recordOf(cached.fusion, p.predictionId);
      expect(record.input).toEqual(newsletter(2));
      expect(record.sparse).toBeUndefined();
    }
  });

  it('Feedback on a skipped prediction trains on exactly the example a computed one gives; the next Predict uses the model at once', async () => {
    const who = pseudonym('eq');
    const input = newsletter(3);
    const computed = await predict(cached.client, 'eq', input);
    const skipped = await predict(cached.client, 'eq', input);
    expect(log.callsFor(who)).toBe(1);
    expect(details(skipped)).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    // GENERAL_ONLY never computes them either, whatever the user.
    const generalOnly = await predict(cached.client, 'eq', input, { strategy: S.FUSION_STRATEGY_GENERAL_ONLY });

    for (const [p, key] of [
      [computed, 'eq-computed'],
      [skipped, 'eq-skipped'],
      [generalOnly, 'eq-general-only'],
    ] as const) {
      expect(await feedback(cached.client, { userId: 'eq', predictionId: p.predictionId, label: 'spam', idempotencyKey: key })).toMatchObject({ accepted: true, duplicate: false });
    }
    const [a, b, c] = recorded.filter((f) => f.userPseudonym === who);
    expect(a!.sparseFeatures.indices.length).toBeGreaterThan(0);
    expect(a!.sparseFeatures).toEqual(expectedFeatures(input));
    for (const other of [b!, c!]) {
      expect(other.sparseFeatures).toEqual(a!.sparseFeatures);
      expect(other.general).toEqual(a!.general);
      expect(other.input).toEqual(a!.input);
      expect(other.label).toBe('spam');
    }

    // Recording the feedback dropped the user's entry (the TTL is a minute): the model is used now.
    const after = await predict(cached.client, 'eq', input);
    expect(after.provenance!.fallbacks).toEqual([]);
    expect(after.provenance!.models.map((m) => m.role)).toEqual([Role.MODEL_ROLE_GENERAL, Role.MODEL_ROLE_PERSONAL]);
    expect(log.callsFor(who)).toBe(2);
    expect(cached.fusion.noModelStats()!.cache.invalidations).toBeGreaterThanOrEqual(3);
  });

  it('honours its TTL: a model written behind its back (another fusion) is used once the entry expires', async () => {
    const TTL = 1_500;
    const short = await stack.addFusion({ personalModel: { noModelCacheTtlMs: TTL } }, {}, log.deps);
    const who = pseudonym('late');
    const input = newsletter(4);
    await predict(short.client, 'late', input);
    const setBy = Date.now(); // the entry was stored before the answer came back
    expect(details(await predict(short.client, 'late', input))).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    expect(log.callsFor(who)).toBe(1);

    // Trained through the other fusion (no bus): nothing tells `short`.
    await feedback(stack.client, { userId: 'late', input, label: 'spam' });
    const trainedAt = Date.now();
    const answers: { at: number; p: v1.Prediction }[] = [];
    for (;;) {
      const p = await predict(short.client, 'late', input);
      answers.push({ at: Date.now(), p });
      if (p.provenance!.fallbacks.length === 0) break;
      expect(Date.now() - setBy).toBeLessThan(TTL + 1_000);
      await new Promise((r) => setTimeout(r, 25));
    }
    const used = answers.at(-1)!;
    // Until the TTL ran out the stale entry answered; after it, Score did and found the model.
    for (const { p } of answers.slice(0, -1)) expect(details(p)).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    if (trainedAt < setBy + TTL - 500) expect(answers.length).toBeGreaterThan(1);
    expect(used.at - setBy).toBeLessThanOrEqual(TTL + 500);
    expect(log.callsFor(who)).toBe(2);
  });

  it('with noModelCacheMaxEntries 0, every Predict asks Score and keeps the features, as before', async () => {
    const off = await stack.addFusion({ personalModel: { noModelCacheMaxEntries: 0 } }, {}, log.deps);
    const who = pseudonym('always');
    const answers: v1.Prediction[] = [];
    for (let i = 0; i < 3; i++) answers.push(await predict(off.client, 'always', newsletter(5)));
    expect(log.callsFor(who)).toBe(3);
    expect(off.fusion.noModelStats()).toBeUndefined();
    for (const p of answers) {
      expect(details(p)).toEqual([NO_MODEL_DETAIL]);
      expect(stagesOf(p)).toContain(Stage.STAGE_PERSONAL_MODEL);
      expect((await recordOf(off.fusion, p.predictionId)).sparse).toBeDefined();
    }
  });
});

describe('known-no-model cache with an event bus (real nats-server)', () => {
  let nats: NatsServer;
  /** Fusion's and personal-model's own connections, as two processes would have. */
  let fusionBus: NatsEventBus;
  let personalBus: NatsEventBus;
  let stack: Stack;
  let fusion: TestFusion;
  let client: InferenceClient;
  let trainer: PersonalModelClient;
  let reader: FeedbackStreamReader;
  const log = new ScoreLog();

  beforeAll(async () => {
    nats = await NatsServer.start();
    const connect = (name: string) => connectNatsBus({ servers: nats.url, name, reconnectTimeWaitMs: 200 });
    [fusionBus, personalBus] = await Promise.all([connect('fusion-no-model-test'), connect('personal-no-model-test')]);
    stack = await startStack({}, { personalBus });
    ({ fusion, client } = await stack.addFusion({}, {}, { bus: fusionBus, ...log.deps }));
    trainer = new PersonalModelClient(stack.personal.address);
    reader = await FeedbackStreamReader.open(fusionBus);
  });
  afterAll(async () => {
    trainer?.close();
    await stack?.stop();
    await fusionBus?.close();
    await personalBus?.close();
    await nats?.dispose();
  });

  it("drops a user's entry when their first model is announced: the next Predict uses it within a second", async () => {
    const who = pseudonym('first');
    const input = newsletter(10);
    const p = await predict(client, 'first', input, { includeEmbedding: true, includeComponents: true });
    expect(details(await predict(client, 'first', input))).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    expect(log.callsFor(who)).toBe(1);
    expect(fusion.noModelStats()!.ttlMs).toBe(60_000);

    // personal-model Train, straight through its client: it announces the version on the bus.
    const probabilities = p.general!.probabilities.map((c) => c.probability);
    const example: v1.TrainingExample = {
      general: { model: { name: 'general', version: '1' }, logits: generalLogits([], probabilities), probabilities, embedding: p.embedding },
      sparseFeatures: personalFeatures(featurizer, input),
      label: 'spam',
      weight: 1,
      sourceEventId: '',
      sourceSequence: 0,
      occurredAt: new Date(),
    };
    const trained = await trainer.train(
      'acme',
      { userPseudonym: who, examples: [example], idempotencyKey: 'first-model', expectedVersion: 0 },
      { deadline: Date.now() + 10_000, signal: new AbortController().signal },
    );
    expect(trained.model?.version).toBe(1);
    const writtenAt = Date.now();

    let after: v1.Prediction;
    for (;;) {
      after = await predict(client, 'first', input);
      if (after.provenance!.fallbacks.length === 0) break;
      expect(Date.now() - writtenAt).toBeLessThan(1_000);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(Date.now() - writtenAt).toBeLessThan(1_000);
    expect(after.provenance!.models[1]).toMatchObject({ model: { name: 'personal-logreg', version: '1' }, role: Role.MODEL_ROLE_PERSONAL });
    expect(fusion.noModelStats()!.events).toMatchObject({ undecodable: 0, gaps: 0 });
    expect(fusion.noModelStats()!.events!.events).toBeGreaterThanOrEqual(1);
  });

  it('reports an event it cannot read and carries on', async () => {
    const who = pseudonym('bad-event');
    await predict(client, 'bad-event', newsletter(11));
    await personalBus.publish(modelUpdatedSubject('acme', who), Buffer.from('not a PersonalModelUpdated'), { dedupeId: 'garbage-1' });
    await waitUntil(() => fusion.noModelStats()!.events!.undecodable === 1, 'the bad event to be reported', 5_000);
    expect(fusion.logs.lines().some((l) => l['msg'] === 'model update event ignored: it cannot be read')).toBe(true);
    // The entry it might have been about stays (its TTL bounds it); the cache keeps working.
    expect(details(await predict(client, 'bad-event', newsletter(11)))).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    expect(log.callsFor(who)).toBe(1);
  });

  it("Feedback on a skipped prediction publishes the same sealed features as a computed one's", async () => {
    const who = pseudonym('eq-bus');
    const input = newsletter(12);
    const computed = await predict(client, 'eq-bus', input);
    const skipped = await predict(client, 'eq-bus', input);
    expect(log.callsFor(who)).toBe(1);
    expect(details(skipped)).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    await feedback(client, { userId: 'eq-bus', predictionId: computed.predictionId, label: 'spam', idempotencyKey: 'eq-bus-1' });
    await feedback(client, { userId: 'eq-bus', predictionId: skipped.predictionId, label: 'spam', idempotencyKey: 'eq-bus-2' });

    const events = await reader.events(who);
    expect(events.map((e) => e.event.predictionId)).toEqual([computed.predictionId, skipped.predictionId]);
    const sealer = plaintextSealer();
    const open = async (e: (typeof events)[number], field: 'input' | 'generalOutput' | 'sparseFeatures') =>
      sealer.open({ tenant: 'acme', userPseudonym: who }, e.event[field]!, e.event.envelope.eventId);
    const [a, b] = events;
    const sparseA = v1.SparseVector.decode(await open(a!, 'sparseFeatures'));
    expect(sparseA).toEqual(expectedFeatures(input));
    expect(v1.SparseVector.decode(await open(b!, 'sparseFeatures'))).toEqual(sparseA);
    expect(v1.GeneralOutput.decode(await open(b!, 'generalOutput'))).toEqual(v1.GeneralOutput.decode(await open(a!, 'generalOutput')));
    expect(v1.InputPayload.decode(await open(b!, 'input'))).toEqual(input);
  });

  it('a reconnect after a lost connection clears the cache: Score is asked again', { timeout: 30_000 }, async () => {
    const who = pseudonym('gap');
    await predict(client, 'gap', newsletter(13));
    expect(details(await predict(client, 'gap', newsletter(13)))).toEqual([`${NO_MODEL_DETAIL} (cached)`]);
    expect(log.callsFor(who)).toBe(1);

    await nats.kill();
    await nats.restart();
    await waitUntil(() => fusion.noModelStats()!.events!.gaps === 1, 'fusion to see the gap', 15_000);
    expect(fusion.noModelStats()!.cache).toMatchObject({ entries: 0, clears: 1 });
    expect(details(await predict(client, 'gap', newsletter(13)))).toEqual([NO_MODEL_DETAIL]);
    expect(log.callsFor(who)).toBe(2);
  });
});
