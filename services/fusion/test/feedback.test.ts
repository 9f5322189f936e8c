import { credentials, status } from '@grpc/grpc-js';
import { Pseudonymizer, callUnary, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeedbackKeys } from '../src/adapters/feedback-keys.js';
import { UUID_PATTERN, feedbackFingerprint } from '../src/domain/ids.js';
import { TEST_SECRET } from './support/fusion.js';
import { call, callError, feedback, mail, predict, text, type InferenceClient } from './support/grpc.js';
import { startStack, type Stack } from './support/stack.js';

const R = v1.FallbackReason;
const HOUR = 3_600_000;

describe('Feedback', () => {
  let stack: Stack;
  let client: InferenceClient;
  let personal: v1.PersonalModelServiceClient;
  const pseudonymizer = new Pseudonymizer({ rootSecret: TEST_SECRET });

  /** The user's current personal model as personal-model reports it (undefined: none). */
  const modelOf = async (userId: string, tenant = 'acme') =>
    callUnary(personal.getModel.bind(personal), { userPseudonym: pseudonymizer.pseudonymize(tenant, userId), version: 0, includeParameters: false }, { metadata: tenantMetadata(tenant), deadline: Date.now() + 5_000 }).then(
      (r) => r.model,
      () => undefined,
    );
  const count = async (name: string, tenant = 'acme') => (await stack.fusion.store.collection({ name })).count(tenant);

  beforeAll(async () => {
    stack = await startStack();
    client = stack.client;
    personal = new v1.PersonalModelServiceClient(stack.personal.address, credentials.createInsecure());
  });
  afterAll(async () => {
    personal?.close();
    await stack?.stop();
  });

  it('trains from a prediction id and is idempotent: the same key twice has one effect and the same event id', async () => {
    const p = await predict(client, 'erin', mail('shop@deals.example', 'weekly offers', 'our newsletter'));
    const first = await feedback(client, { userId: 'erin', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'k-1' });
    expect(first).toEqual({ accepted: true, eventId: expect.stringMatching(UUID_PATTERN), duplicate: false });
    const again = await feedback(client, { userId: 'erin', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'k-1' });
    expect(again).toEqual({ accepted: true, eventId: first.eventId, duplicate: true });
    const model = await modelOf('erin');
    expect(model).toMatchObject({ version: 1, exampleCount: 1, generalModel: { name: 'general', version: '1' } });
    // The prediction now finds a model.
    const next = await predict(client, 'erin', mail('shop@deals.example', 'weekly offers', 'our newsletter'));
    expect(next.provenance!.fallbacks).toEqual([]);
  });

  it('two identical calls racing with one key apply once and report the same event id', async () => {
    const p = await predict(client, 'rosa', text('lunch with the project team'));
    const calls = await Promise.all([0, 1, 2].map(() => feedback(client, { userId: 'rosa', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'race' })));
    expect(new Set(calls.map((c) => c.eventId)).size).toBe(1);
    expect(calls.filter((c) => !c.duplicate).length).toBeGreaterThanOrEqual(1);
    expect(await modelOf('rosa')).toMatchObject({ exampleCount: 1 });
  });

  it('finishes a call that stopped half-way (key claimed, not recorded) under the same event id', async () => {
    const p = await predict(client, 'theo', text('notes from the team meeting'));
    // What a crash between claiming the key and training leaves behind.
    const keys = await FeedbackKeys.open(stack.fusion.store, { retentionMs: HOUR });
    const pseudonym = pseudonymizer.pseudonymize('acme', 'theo');
    const held = await keys.claim('acme', pseudonym, 'half-way', { eventId: '0190aaaa-0000-7000-8000-00000000beef', fingerprint: feedbackFingerprint({ predictionId: p.predictionId }, 'spam') });
    expect(held?.state).toBe('pending');
    const retry = await feedback(client, { userId: 'theo', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'half-way' });
    expect(retry).toEqual({ accepted: true, eventId: '0190aaaa-0000-7000-8000-00000000beef', duplicate: false });
    expect((await keys.get('acme', pseudonym, 'half-way'))?.state).toBe('done');
    expect(await modelOf('theo')).toMatchObject({ exampleCount: 1 });
  });

  it('refuses the same key for different feedback, and changes nothing', async () => {
    const p = await predict(client, 'erin', text('meeting agenda'));
    const err = await callError(feedback(client, { userId: 'erin', predictionId: p.predictionId, label: 'ham', idempotencyKey: 'k-1' }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/idempotency_key was already used for other feedback/);
    expect((await modelOf('erin'))?.exampleCount).toBe(1);
  });

  it('without a key, the same feedback again is the same event (applied once); other feedback is new', async () => {
    const input = text('project review moved to tomorrow');
    const a = await feedback(client, { userId: 'frank', input, label: 'ham' });
    const b = await feedback(client, { userId: 'frank', input, label: 'ham' });
    expect(a).toEqual({ accepted: true, eventId: expect.stringMatching(UUID_PATTERN), duplicate: false });
    expect(b).toEqual({ accepted: true, eventId: a.eventId, duplicate: true });
    expect(await modelOf('frank')).toMatchObject({ version: 1, exampleCount: 1 });
    const c = await feedback(client, { userId: 'frank', input: text('agenda for the review'), label: 'ham' });
    const d = await feedback(client, { userId: 'frank', input, label: 'spam' });
    expect(new Set([a.eventId, c.eventId, d.eventId]).size).toBe(3);
    expect([c.duplicate, d.duplicate]).toEqual([false, false]);
    expect(await modelOf('frank')).toMatchObject({ version: 3, exampleCount: 3 });
  });

  it('trains from an input given directly (no prior prediction)', async () => {
    const before = await predict(client, 'gina', text('cheap pills offer'));
    expect(before.provenance!.fallbacks.map((f) => f.reason)).toEqual([R.FALLBACK_REASON_NO_PERSONAL_MODEL]);
    const res = await feedback(client, { userId: 'gina', input: text('cheap pills offer'), label: 'ham', idempotencyKey: 'direct-1' });
    expect(res.accepted).toBe(true);
    const after = await predict(client, 'gina', text('cheap pills offer'));
    expect(after.provenance!.fallbacks).toEqual([]);
    expect(after.provenance!.models[1]!.model).toEqual({ name: 'personal-logreg', version: '1' });
  });

  it("answers NOT_FOUND for an unknown prediction id, another user's and another tenant's", async () => {
    const p = await predict(client, 'hugo', text('notes from the team meeting'));
    const cases: [Promise<unknown>, string][] = [
      [feedback(client, { userId: 'hugo', predictionId: '0190aaaa-0000-7000-8000-000000000000', label: 'spam' }), 'unknown id'],
      [feedback(client, { userId: 'ivan', predictionId: p.predictionId, label: 'spam' }), "another user's prediction"],
      [feedback(client, { userId: 'hugo', predictionId: p.predictionId, label: 'spam' }, { tenant: 'other-co' }), "another tenant's prediction"],
    ];
    for (const [promise, what] of cases) {
      const err = await callError(promise);
      expect(err.code, what).toBe(status.NOT_FOUND);
      expect(err.details).toMatch(/is unknown or expired for this user: ids are kept 168 hours .*send the input instead/);
    }
    expect(await modelOf('hugo')).toBeUndefined();
    expect(await modelOf('ivan')).toBeUndefined();
  });

  it("rejects a label outside the general model's labels, listing them, and stores nothing", async () => {
    const keys = await count('feedback_keys');
    const p = await predict(client, 'jane', text('free money'));
    for (const target of [{ predictionId: p.predictionId }, { input: text('free money') }]) {
      const err = await callError(feedback(client, { userId: 'jane', ...target, label: 'junk', idempotencyKey: 'bad-label' }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toBe("label 'junk' is not one of the general model's labels: ham, spam");
    }
    expect(await count('feedback_keys')).toBe(keys);
    expect(await modelOf('jane')).toBeUndefined();
    // The key was not used up by the rejected calls.
    const ok = await feedback(client, { userId: 'jane', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'bad-label' });
    expect(ok.duplicate).toBe(false);
  });

  it('rejects a request without a target, label, user or tenant, and bad inputs', async () => {
    const base = { userId: 'kim', target: { $case: 'predictionId' as const, value: 'x' }, label: 'spam', idempotencyKey: '', occurredAt: undefined };
    const cases: [v1.FeedbackRequest, RegExp, string | null][] = [
      [{ ...base, target: undefined }, /target is required: set prediction_id/, 'acme'],
      [{ ...base, target: { $case: 'predictionId', value: '' } }, /prediction_id is empty/, 'acme'],
      [{ ...base, label: '' }, /label is required/, 'acme'],
      [{ ...base, userId: '' }, /user_id is required/, 'acme'],
      [{ ...base, target: { $case: 'input', value: text('') } }, /input\.text is empty/, 'acme'],
      [{ ...base, idempotencyKey: 'k'.repeat(300) }, /idempotency_key is 300 bytes, more than the limit of 256/, 'acme'],
      [base, /tenant required/, null],
    ];
    for (const [request, message, tenant] of cases) {
      const err = await callError(call(client, client.feedback, request, { tenant }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
    }
    expect(await modelOf('kim')).toBeUndefined();
  });

  it('prunes expired predictions and keys; an expired prediction id is then unknown', async () => {
    const p = await predict(client, 'lena', text('agenda and notes for review'));
    await feedback(client, { userId: 'lena', input: text('agenda'), label: 'ham', idempotencyKey: 'prune-me' });
    expect(await stack.fusion.prune()).toEqual({ predictions: 0, feedbackKeys: 0 });
    const predictions = await count('predictions');
    const keys = await count('feedback_keys');
    expect(predictions).toBeGreaterThan(0);
    const later = await stack.fusion.prune(new Date(Date.now() + 169 * HOUR));
    expect(later).toEqual({ predictions, feedbackKeys: keys });
    expect(await count('predictions')).toBe(0);
    const err = await callError(feedback(client, { userId: 'lena', predictionId: p.predictionId, label: 'spam' }));
    expect(err.code).toBe(status.NOT_FOUND);
  });
});
