import { status } from '@grpc/grpc-js';
import { INVALID_FIELD_KEY } from '@aimass/platform';
import { durationToMs, v1 } from '@aimass/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UUID_PATTERN } from '../src/domain/ids.js';
import { call, callError, feedback, mail, options, predict, predictStream, text, type InferenceClient } from './support/grpc.js';
import { startStack, type Stack } from './support/stack.js';

const S = v1.FusionStrategy;
const R = v1.FallbackReason;
const Role = v1.ModelRole;
const Stage = v1.Stage;

/** Mails of one sender the general model reads as meeting notes (ham), and that this user calls spam. */
const ALICE = 'alice@corp.example';
const BOB = 'bob@corp.example';
const SENDER = 'digest@updates.example';
const digest = (i: number) => mail(SENDER, `team meeting digest ${i}`, `notes from the team meeting and the project review ${i}`, { 'list-id': '<digest.updates.example>' });
const logit = (p: readonly v1.ClassProbability[]) => Math.log(p[1]!.probability / p[0]!.probability);
const predictionOf = (outcome: v1.PredictItemResult['outcome']): v1.Prediction => {
  expect(outcome?.$case).toBe('prediction');
  return (outcome as { value: v1.Prediction }).value;
};
const stageMs = (p: v1.Prediction, stage: v1.Stage) => {
  const t = p.provenance!.timings.find((x) => x.stage === stage);
  return t ? durationToMs(t.duration!) : undefined;
};

describe('Predict, PredictBatch and PredictStream on real general and personal models', () => {
  let stack: Stack;
  let client: InferenceClient;
  /** Feedback events alice has given (her model's evidence). */
  let aliceFeedback = 0;
  let generalLabel: string;
  let userLabel: string;

  beforeAll(async () => {
    stack = await startStack();
    client = stack.client;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers a user without a personal model with the general result and a NO_PERSONAL_MODEL fallback', async () => {
    const p = await predict(client, ALICE, digest(0), { includeComponents: true });
    expect(p.predictionId).toMatch(UUID_PATTERN);
    expect(p.probabilities.map((c) => [c.label, c.index])).toEqual([
      ['ham', 0],
      ['spam', 1],
    ]);
    expect(p.probabilities[0]!.probability + p.probabilities[1]!.probability).toBeCloseTo(1, 5);
    // The fused answer is the general model's own.
    expect(p.label).toBe(p.general!.label);
    expect(p.probabilities[1]!.probability).toBeCloseTo(p.general!.probabilities[1]!.probability, 5);
    expect(p.personal).toBeUndefined();
    const prov = p.provenance!;
    expect(prov.models).toEqual([{ model: { name: 'general', version: '1' }, role: Role.MODEL_ROLE_GENERAL, weight: 1 }]);
    expect(prov.requestedStrategy).toBe(S.FUSION_STRATEGY_STACKING);
    expect(prov.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(prov.fallbacks).toEqual([{ reason: R.FALLBACK_REASON_NO_PERSONAL_MODEL, role: Role.MODEL_ROLE_PERSONAL, detail: expect.stringMatching(/no personal model/) }]);
    expect(prov.timings.map((t) => t.stage)).toEqual([Stage.STAGE_ADMISSION, Stage.STAGE_GENERAL_MODEL, Stage.STAGE_PERSONAL_MODEL, Stage.STAGE_FUSION, Stage.STAGE_TOTAL]);
    const total = stageMs(p, Stage.STAGE_TOTAL)!;
    expect(total).toBeGreaterThan(0);
    expect(total).toBeGreaterThanOrEqual(stageMs(p, Stage.STAGE_GENERAL_MODEL)! + stageMs(p, Stage.STAGE_PERSONAL_MODEL)!);
    generalLabel = p.label;
    userLabel = generalLabel === 'ham' ? 'spam' : 'ham';
  });

  it('does not consult the personal model under GENERAL_ONLY (per-request override of the default)', async () => {
    const p = await predict(client, ALICE, digest(0), { strategy: S.FUSION_STRATEGY_GENERAL_ONLY });
    expect(p.provenance).toMatchObject({ requestedStrategy: S.FUSION_STRATEGY_GENERAL_ONLY, appliedStrategy: S.FUSION_STRATEGY_GENERAL_ONLY, fallbacks: [] });
    expect(stageMs(p, Stage.STAGE_PERSONAL_MODEL)).toBeUndefined();
    expect(p.label).toBe(generalLabel);
  });

  it("learns one sender from repeated feedback: STACKING flips that user's label, and only hers", async () => {
    let flippedAt: number | undefined;
    for (let i = 1; i <= 40 && flippedAt === undefined; i++) {
      const p = await predict(client, ALICE, digest(i));
      if (aliceFeedback > 0 && p.label === userLabel) {
        flippedAt = aliceFeedback;
        break;
      }
      // The user corrects every mistake, the way people do.
      const res = await feedback(client, { userId: ALICE, predictionId: p.predictionId, label: userLabel, idempotencyKey: `fb-${i}` });
      expect(res).toMatchObject({ accepted: true, duplicate: false, eventId: expect.stringMatching(UUID_PATTERN) });
      aliceFeedback++;
    }
    expect(flippedAt, 'the fused label should follow the user within 40 feedback events').toBeDefined();

    // A mail of that sender the model has not seen.
    const fresh = await predict(client, ALICE, digest(1000), { includeComponents: true });
    expect(fresh.label).toBe(userLabel);
    expect(fresh.general!.label).toBe(generalLabel);
    const prov = fresh.provenance!;
    expect(prov).toMatchObject({ requestedStrategy: S.FUSION_STRATEGY_STACKING, appliedStrategy: S.FUSION_STRATEGY_STACKING, fallbacks: [] });
    expect(prov.models).toEqual([
      { model: { name: 'general', version: '1' }, role: Role.MODEL_ROLE_GENERAL, weight: 1 },
      { model: { name: 'personal-logreg', version: String(aliceFeedback) }, role: Role.MODEL_ROLE_PERSONAL, weight: 1 },
    ]);

    // Bob gets the same mail with the general answer: alice's feedback is hers.
    const bob = await predict(client, BOB, digest(1000));
    expect(bob.label).toBe(generalLabel);
    expect(bob.provenance!.fallbacks.map((f) => f.reason)).toEqual([R.FALLBACK_REASON_NO_PERSONAL_MODEL]);
  });

  it('PERSONAL_ONLY answers with the personal standalone head', async () => {
    const p = await predict(client, ALICE, digest(1001), { strategy: S.FUSION_STRATEGY_PERSONAL_ONLY, includeComponents: true });
    expect(p.provenance).toMatchObject({ requestedStrategy: S.FUSION_STRATEGY_PERSONAL_ONLY, appliedStrategy: S.FUSION_STRATEGY_PERSONAL_ONLY, fallbacks: [] });
    expect(p.provenance!.models.map((m) => [m.role, m.weight])).toEqual([
      [Role.MODEL_ROLE_GENERAL, 0],
      [Role.MODEL_ROLE_PERSONAL, 1],
    ]);
    expect(p.personal!.model).toEqual({ name: 'personal-logreg', version: String(aliceFeedback) });
    expect(p.label).toBe(p.personal!.label);
    expect(p.probabilities[1]!.probability).toBeCloseTo(p.personal!.probabilities[1]!.probability, 5);
  });

  it('INTERPOLATE mixes the logits with the shrinkage weight λ = 0.8·n/(n+20)', async () => {
    const p = await predict(client, ALICE, digest(1002), { strategy: S.FUSION_STRATEGY_INTERPOLATE, includeComponents: true });
    const lambda = (0.8 * aliceFeedback) / (aliceFeedback + 20);
    expect(p.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_INTERPOLATE);
    const [g, personal] = p.provenance!.models;
    expect(g!.weight).toBeCloseTo(1 - lambda, 9);
    expect(personal!.weight).toBeCloseTo(lambda, 9);
    const expected = (1 - lambda) * logit(p.general!.probabilities) + lambda * logit(p.personal!.probabilities);
    expect(logit(p.probabilities)).toBeCloseTo(expected, 3);
  });

  it('OVERRIDE follows the tenant thresholds: a personal answer past them wins, below them the general one stays', async () => {
    const lenient = await stack.addFusion({ tenants: { acme: { strategy: 'override', override: { threshold: 0.5, minExamples: 1 } } } });
    const strict = await stack.addFusion({ tenants: { acme: { strategy: 'override', override: { threshold: 1, minExamples: 1 } } } });
    const wins = await predict(lenient.client, ALICE, digest(1003), { includeComponents: true });
    expect(wins.provenance).toMatchObject({ requestedStrategy: S.FUSION_STRATEGY_OVERRIDE, appliedStrategy: S.FUSION_STRATEGY_OVERRIDE });
    expect(wins.provenance!.models.map((m) => m.weight)).toEqual([0, 1]);
    expect(wins.label).toBe(wins.personal!.label);
    const stays = await predict(strict.client, ALICE, digest(1003), { includeComponents: true });
    expect(stays.provenance!.models.map((m) => m.weight)).toEqual([1, 0]);
    expect(stays.label).toBe(stays.general!.label);
    // The same user in another tenant is another person: no model there.
    const other = await predict(lenient.client, ALICE, digest(1003), {}, { tenant: 'other-co' });
    expect(other.provenance!.fallbacks.map((f) => f.reason)).toEqual([R.FALLBACK_REASON_NO_PERSONAL_MODEL]);
    expect(other.provenance!.requestedStrategy).toBe(S.FUSION_STRATEGY_STACKING);
  });

  it('returns the top k, the embedding and the components when asked', async () => {
    const p = await predict(client, BOB, text('win free money now, click here'), { topK: 1, includeEmbedding: true, includeComponents: true });
    expect(p.probabilities).toHaveLength(1);
    expect(p.probabilities[0]!.label).toBe(p.label);
    expect(p.probabilities[0]!.probability).toBeGreaterThan(0.5);
    expect(p.embedding).toHaveLength(8);
    expect(p.general).toMatchObject({ model: { name: 'general', version: '1' }, label: p.label });
    expect(p.general!.probabilities).toHaveLength(2);
  });

  it('PredictBatch: many users in one general call and one personal call, a bad item failing alone', async () => {
    const before = stack.general.stats().batchers['general:1']!.submitted;
    const res = await call(client, client.predictBatch, {
      items: [
        { itemId: 'a', userId: ALICE, input: digest(2000) },
        { itemId: '', userId: BOB, input: digest(2000) },
        { itemId: 'bad', userId: 'carol', input: { kind: { $case: 'text', value: '   ' } } },
        { itemId: 'd', userId: 'dave', input: text('project review moved to tomorrow') },
        { itemId: 'e', userId: '', input: text('hello') },
      ],
      options: options({ includeComponents: true }),
    });
    expect(stack.general.stats().batchers['general:1']!.submitted - before).toBe(1);
    expect(res.results.map((r) => r.itemId)).toEqual(['a', '1', 'bad', 'd', 'e']);
    const [a, b, bad, d, e] = res.results.map((r) => r.outcome);
    expect(predictionOf(a).label).toBe(userLabel);
    expect(predictionOf(a).provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_STACKING);
    expect(predictionOf(b).label).toBe(generalLabel);
    expect(predictionOf(b).provenance!.fallbacks[0]!.reason).toBe(R.FALLBACK_REASON_NO_PERSONAL_MODEL);
    expect(bad).toEqual({ $case: 'error', value: { code: status.INVALID_ARGUMENT, message: 'items[2].input.text is empty: send the text to classify' } });
    expect(predictionOf(d).label).toBe('ham');
    expect(e).toEqual({ $case: 'error', value: { code: status.INVALID_ARGUMENT, message: expect.stringMatching(/^items\[4\]\.user_id is required/) } });
    // Each prediction has its own id.
    const ids = [a, b, d].map((o) => predictionOf(o).predictionId);
    expect(new Set(ids).size).toBe(3);
  });

  it('PredictBatch refuses an empty or oversized batch, or bad shared options', async () => {
    const empty = await callError(call(client, client.predictBatch, { items: [], options: undefined }));
    expect(empty.code).toBe(status.INVALID_ARGUMENT);
    expect(empty.details).toBe('items must not be empty');
    const many = Array.from({ length: 257 }, (_, i) => ({ itemId: String(i), userId: 'u', input: text('x') }));
    const tooMany = await callError(call(client, client.predictBatch, { items: many, options: undefined }));
    expect(tooMany.code).toBe(status.INVALID_ARGUMENT);
    expect(tooMany.details).toBe('257 items exceed the limit of 256 per PredictBatch: split the batch');
    const badOptions = await callError(call(client, client.predictBatch, { items: [{ itemId: 'a', userId: 'u', input: text('x') }], options: options({ strategy: 42 as v1.FusionStrategy }) }));
    expect(badOptions.code).toBe(status.INVALID_ARGUMENT);
    expect(badOptions.details).toMatch(/^options\.strategy: unknown strategy 42/);
  });

  it('PredictStream answers each item by id, errors per item, and keeps going', async () => {
    const requests: v1.PredictStreamRequest[] = [
      ...Array.from({ length: 6 }, (_, i) => ({ itemId: `s${i}`, userId: i % 2 ? ALICE : BOB, input: digest(3000 + i), options: undefined })),
      { itemId: '', userId: BOB, input: text('no id'), options: undefined },
      { itemId: 'empty', userId: BOB, input: undefined, options: undefined },
      { itemId: 'general', userId: ALICE, input: digest(3100), options: options({ strategy: S.FUSION_STRATEGY_GENERAL_ONLY }) },
    ];
    const { responses, error } = await predictStream(client, requests);
    expect(error).toBeUndefined();
    const byId = new Map(responses.map((r) => [r.result!.itemId, r.result!.outcome!]));
    expect(responses).toHaveLength(requests.length);
    for (let i = 0; i < 6; i++) expect(predictionOf(byId.get(`s${i}`)).label).toBe(i % 2 ? userLabel : generalLabel);
    expect(byId.get('')).toEqual({ $case: 'error', value: { code: status.INVALID_ARGUMENT, message: 'item_id is required: results are matched to requests by it' } });
    expect(byId.get('empty')).toEqual({ $case: 'error', value: { code: status.INVALID_ARGUMENT, message: 'input is empty: set text, mail or raw' } });
    expect(predictionOf(byId.get('general')).label).toBe(generalLabel);
  });

  it('PredictStream keeps a bounded number of items in flight and still answers all of them', async () => {
    const narrow = await stack.addFusion({ limits: { maxStreamInFlight: 2 } });
    const requests = Array.from({ length: 25 }, (_, i) => ({ itemId: `n${i}`, userId: `user-${i % 5}`, input: text(`project review ${i}`), options: undefined }));
    const { responses, error } = await predictStream(narrow.client, requests);
    expect(error).toBeUndefined();
    expect(responses.map((r) => r.result!.itemId).sort()).toEqual(requests.map((r) => r.itemId).sort());
    expect(responses.every((r) => r.result!.outcome!.$case === 'prediction')).toBe(true);
  });

  it('PredictStream without a tenant ends with INVALID_ARGUMENT', async () => {
    const { responses, error } = await predictStream(client, [{ itemId: 'x', userId: BOB, input: text('hi'), options: undefined }], { tenant: null });
    expect(responses).toEqual([]);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/tenant required/);
  });

  describe('bad input', () => {
    const cases: [string, v1.PredictRequest, string, RegExp][] = [
      ['no input', { userId: BOB, input: undefined, options: undefined }, 'input', /^input is empty: set text, mail or raw$/],
      ['blank text', { userId: BOB, input: text(''), options: undefined }, 'input.text', /input\.text is empty/],
      ['oversized text', { userId: BOB, input: text('x'.repeat(256 * 1024 + 1)), options: undefined }, 'input.text', /is 262145 bytes, more than the limit of 262144/],
      ['typed features', { userId: BOB, input: { kind: { $case: 'features', value: { values: {} } } }, options: undefined }, 'input.features', /typed features are not supported/],
      [
        'unsupported raw type',
        { userId: BOB, input: { kind: { $case: 'raw', value: { contentType: 'image/png', data: Buffer.from([1, 2]) } } }, options: undefined },
        'input.raw.content_type',
        /'image\/png' is not supported/,
      ],
      ['missing user', { userId: '', input: text('hi'), options: undefined }, 'user_id', /user_id is required/],
      ['unknown strategy', { userId: BOB, input: text('hi'), options: options({ strategy: 9 as v1.FusionStrategy }) }, 'options.strategy', /unknown strategy 9/],
    ];
    it.each(cases)('%s → INVALID_ARGUMENT naming the field', async (_name, request, field, message) => {
      const err = await callError(call(client, client.predict, request));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
      expect(err.metadata.get(INVALID_FIELD_KEY)).toEqual([field]);
      // Still serving.
      expect((await predict(client, BOB, text('hello'))).label).toMatch(/^(ham|spam)$/);
    });

    it('a missing or malformed tenant → INVALID_ARGUMENT', async () => {
      const missing = await callError(call(client, client.predict, { userId: BOB, input: text('hi'), options: undefined }, { tenant: null }));
      expect(missing.code).toBe(status.INVALID_ARGUMENT);
      expect(missing.details).toMatch(/tenant required: send the "x-aimass-tenant" metadata header/);
      const bad = await callError(call(client, client.predict, { userId: BOB, input: text('hi'), options: undefined }, { tenant: 'Not A Tenant' }));
      expect(bad.code).toBe(status.INVALID_ARGUMENT);
      expect(bad.details).toMatch(/invalid tenant id/);
    });

    it('a general model that is not there → NOT_FOUND from the general model', async () => {
      const err = await callError(predict(client, BOB, text('hi'), { generalModel: { name: 'nope', version: '' } }));
      expect(err.code).toBe(status.NOT_FOUND);
      expect(err.details).toMatch(/nope/);
    });

    it('a deadline too short for any model → DEADLINE_EXCEEDED saying how much is needed', async () => {
      const slowStart = await stack.addFusion({ budget: { minGeneralMs: 2_000 } });
      const err = await callError(predict(slowStart.client, BOB, text('hi'), {}, { deadlineMs: 1_000 }));
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
      expect(err.details).toMatch(/deadline too short: \d+ ms left when the request arrived, at least 2003 ms are needed/);
    });

    it('stores nothing for rejected calls', async () => {
      const predictions = await stack.fusion.store.collection({ name: 'predictions' });
      const before = await predictions.count('acme');
      await callError(call(client, client.predict, { userId: BOB, input: undefined, options: undefined }));
      await callError(call(client, client.predict, { userId: '', input: text('x'), options: undefined }));
      expect(await predictions.count('acme')).toBe(before);
      await predict(client, BOB, text('hello'));
      expect(await predictions.count('acme')).toBe(before + 1);
    });
  });

  it('never logs a raw user id, in fusion or downstream', () => {
    for (const id of [ALICE, BOB]) {
      expect(stack.fusion.logs.text()).not.toContain(id);
      expect(stack.downstreamLogs.text()).not.toContain(id);
    }
    expect(stack.fusion.logs.lines().length).toBeGreaterThan(0);
  });
});
