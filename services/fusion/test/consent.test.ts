import { status } from '@grpc/grpc-js';
import { connectNatsBus, type NatsEventBus } from '@aimass/events';
import { Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { NatsServer, freePort } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@aimass/storage';
import { FeedbackKeys } from '../src/adapters/feedback-keys.js';
import { startFusion } from '../src/service.js';
import { ScoreLog } from './support/calls.js';
import { TEST_SECRET, type TestFusion } from './support/fusion.js';
import { call, callError, feedback, mail, options, predict, type InferenceClient } from './support/grpc.js';
import { startTestPrivacy, type TestPrivacy } from './support/privacy.js';
import { startStack, type Stack } from './support/stack.js';
import { FeedbackStreamReader } from './support/stream.js';

const R = v1.FallbackReason;
const S = v1.FusionStrategy;
const Role = v1.ModelRole;
const pseudonymizer = new Pseudonymizer({ rootSecret: TEST_SECRET });
const pseudonym = (userId: string) => pseudonymizer.pseudonymize('acme', userId);

/** The bound this test holds a consent change to (the cache's event path; the TTL is the backstop for a lost event). */
const BOUND_MS = 1_000;

const newsletter = (i: number | string) =>
  mail('news@shop.example', `weekly offers ${i}`, `our newsletter, this week only ${i}`, { 'list-id': '<offers.shop.example>', 'reply-to': 'sales@shop.example' });

const fallbacksOf = (p: v1.Prediction) => p.provenance!.fallbacks.map((f) => ({ reason: f.reason, role: f.role, detail: f.detail }));

/** Repeats `attempt` until it returns true; returns the time that took, failing beyond `limitMs`. */
async function msUntil(attempt: () => Promise<boolean>, limitMs: number): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await attempt()) return performance.now() - start;
    if (performance.now() - start > limitMs) throw new Error(`not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Consent enforcement through the public API: real general-model, personal-model and privacy
 * services, fusion with `privacy.address` on a real nats-server (ConsentChanged feeds its cache),
 * Score calls counted with an interceptor, the feedback stream read back from JetStream.
 */
describe('consent enforcement (integration, real privacy service and nats-server)', () => {
  let nats: NatsServer;
  let privacyBus: NatsEventBus;
  let fusionBus: NatsEventBus;
  let stack: Stack;
  let privacy: TestPrivacy;
  let fusion: TestFusion;
  let client: InferenceClient;
  let reader: FeedbackStreamReader;
  let keys: FeedbackKeys;
  const scores = new ScoreLog();

  /** Ids of the prediction records fusion holds for the user. */
  const recordIds = async (who: string, of: TestFusion = fusion) =>
    (await (await of.store.collection({ name: 'predictions' })).query('acme', { limit: 1_000 })).items.filter((d) => d.user === who).map((d) => d.id);

  /** A personal model for the user, trained through the stack's own fusion (no bus, no consent: it trains directly). */
  const trainModel = async (userId: string, i: number) => {
    for (const [k, label] of ['spam', 'spam', 'ham'].entries()) {
      await feedback(stack.client, { userId, input: newsletter(`${i}-${k}`), label, idempotencyKey: `train-${userId}-${k}` });
    }
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
    const connect = (name: string) => connectNatsBus({ servers: nats.url, name, reconnectTimeWaitMs: 200 });
    [privacyBus, fusionBus] = await Promise.all([connect('privacy-consent-test'), connect('fusion-consent-test')]);
    stack = await startStack();
    privacy = await startTestPrivacy(privacyBus, stack.downstreamLogs.logger);
    ({ fusion, client } = await stack.addFusion({ privacy: { address: privacy.address } }, {}, { bus: fusionBus, ...scores.deps }));
    reader = await FeedbackStreamReader.open(fusionBus);
    keys = await FeedbackKeys.open(fusion.store, { retentionMs: 3_600_000 });
  });
  afterAll(async () => {
    await stack?.stop();
    await privacy?.stop();
    await fusionBus?.close();
    await privacyBus?.close();
    await nats?.dispose();
  });

  it('without personalization consent: the general model only, a NO_CONSENT fallback, and personal-model is never asked', async () => {
    const who = pseudonym('no-consent');
    await trainModel('no-consent', 1);
    for (const strategy of [S.FUSION_STRATEGY_STACKING, S.FUSION_STRATEGY_INTERPOLATE, S.FUSION_STRATEGY_PERSONAL_ONLY]) {
      const p = await predict(client, 'no-consent', newsletter(1), { strategy, includeComponents: true });
      expect(p.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
      expect(p.provenance!.models.map((m) => m.role)).toEqual([Role.MODEL_ROLE_GENERAL]);
      expect(p.personal).toBeUndefined();
      expect(fallbacksOf(p)).toEqual([
        {
          reason: R.FALLBACK_REASON_NO_CONSENT,
          role: Role.MODEL_ROLE_PERSONAL,
          detail: "the user has not granted personalization consent (they never decided, and the tenant's default is not granted): answering with the general model",
        },
      ]);
    }
    expect(scores.callsFor(who)).toBe(0);
    // Not a NO_MODEL answer: the known-no-model cache never held the user.
    expect(fusion.noModelStats()!.cache.remembered).toBe(0);
    // The same answer as a fusion without enforcement gives under GENERAL_ONLY.
    const plain = await predict(stack.client, 'no-consent', newsletter(1), { strategy: S.FUSION_STRATEGY_GENERAL_ONLY });
    const enforced = await predict(client, 'no-consent', newsletter(1));
    expect(enforced.probabilities).toEqual(plain.probabilities);
  });

  it('a batch sends Score only the items of users who granted personalization; the others get NO_CONSENT', async () => {
    await privacy.setConsent('batch-yes', 'personalization', 'granted');
    const mark = scores.requests.length;
    const res = await call(client, client.predictBatch, {
      items: [
        { itemId: 'a', userId: 'batch-no', input: newsletter(2) },
        { itemId: 'b', userId: 'batch-yes', input: newsletter(2) },
        { itemId: 'c', userId: 'batch-no-2', input: newsletter(3) },
      ],
      options: options(),
    });
    expect(scores.usersSince(mark)).toEqual([pseudonym('batch-yes')]);
    const reasons = res.results.map((r) => (r.outcome?.$case === 'prediction' ? r.outcome.value.provenance!.fallbacks.map((f) => f.reason) : 'error'));
    // batch-yes has no model yet: Score was asked and said so.
    expect(reasons).toEqual([[R.FALLBACK_REASON_NO_CONSENT], [R.FALLBACK_REASON_NO_PERSONAL_MODEL], [R.FALLBACK_REASON_NO_CONSENT]]);
  });

  it('a grant takes effect within the bound: the next Predict uses the personal model', async () => {
    const who = pseudonym('granting');
    await trainModel('granting', 3);
    const before = await predict(client, 'granting', newsletter(4));
    expect(fallbacksOf(before).map((f) => f.reason)).toEqual([R.FALLBACK_REASON_NO_CONSENT]);
    expect(scores.callsFor(who)).toBe(0);

    await privacy.setConsent('granting', 'personalization', 'granted');
    let after!: v1.Prediction;
    const ms = await msUntil(async () => {
      after = await predict(client, 'granting', newsletter(4));
      return after.provenance!.fallbacks.length === 0;
    }, BOUND_MS);
    expect(ms).toBeLessThan(BOUND_MS);
    expect(after.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_STACKING);
    expect(after.provenance!.models[1]).toMatchObject({ model: { name: 'personal-logreg' }, role: Role.MODEL_ROLE_PERSONAL });
    expect(scores.callsFor(who)).toBeGreaterThanOrEqual(1);

    // And a withdrawal takes it away again just as fast.
    await privacy.setConsent('granting', 'personalization', 'withdrawn');
    const calls = scores.callsFor(who);
    await msUntil(async () => (await predict(client, 'granting', newsletter(4))).provenance!.fallbacks[0]?.reason === R.FALLBACK_REASON_NO_CONSENT, BOUND_MS);
    const withdrawn = await predict(client, 'granting', newsletter(4));
    expect(fallbacksOf(withdrawn)[0]!.detail).toMatch(/^the user has not granted personalization consent \(they withdrew it\)/);
    expect(scores.callsFor(who)).toBe(calls);
  });

  it('a user without consent and without a model is not remembered as having no model: after a grant, Score is asked', async () => {
    const who = pseudonym('fresh');
    await predict(client, 'fresh', newsletter(5));
    await predict(client, 'fresh', newsletter(5));
    expect(scores.callsFor(who)).toBe(0);
    await privacy.setConsent('fresh', 'personalization', 'granted');
    await msUntil(async () => (await predict(client, 'fresh', newsletter(5))).provenance!.fallbacks[0]?.reason === R.FALLBACK_REASON_NO_PERSONAL_MODEL, BOUND_MS);
    expect(scores.callsFor(who)).toBe(1);
  });

  it('without training consent: no prediction record is kept; Feedback is refused with FAILED_PRECONDITION, nothing published, the key not kept; after a grant it is recorded', async () => {
    const who = pseudonym('trainer');
    const withoutConsent = fusion.recordStats().withoutConsent;
    const fetches = fusion.dataKeyStats()!.fetches;
    const p = await predict(client, 'trainer', newsletter(6));
    // Feedback, the record's only reader, needs training consent: neither the mail nor a key is kept for the user.
    expect(await recordIds(who)).toEqual([]);
    expect(fusion.recordStats().withoutConsent).toBe(withoutConsent + 1);
    expect(fusion.dataKeyStats()!.fetches).toBe(fetches);
    const invalidations = fusion.noModelStats()!.cache.invalidations;
    // Refused for what it is, before the record is looked up (not "unknown prediction").
    const err = await callError(feedback(client, { userId: 'trainer', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'fb-1' }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/^the user has not granted training consent: they never decided, and the tenant's default is not granted\..*nothing was stored or published$/);
    expect(await reader.events(who)).toEqual([]);
    expect(await keys.get('acme', who, 'fb-1')).toBeUndefined();
    // A refusal trained nothing: Predict's known-no-model cache is left alone.
    expect(fusion.noModelStats()!.cache.invalidations).toBe(invalidations);
    // Without a key, by input: refused the same way.
    const byInput = await callError(feedback(client, { userId: 'trainer', input: newsletter(6), label: 'spam' }));
    expect(byInput.code).toBe(status.FAILED_PRECONDITION);
    expect(await reader.events(who)).toEqual([]);

    await privacy.setConsent('trainer', 'training', 'granted');
    let res!: v1.FeedbackResponse;
    await msUntil(async () => {
      try {
        res = await feedback(client, { userId: 'trainer', input: newsletter(6), label: 'spam', idempotencyKey: 'fb-1' });
        return true;
      } catch {
        return false;
      }
    }, BOUND_MS);
    expect(res).toMatchObject({ accepted: true, duplicate: false });
    const events = await reader.events(who);
    expect(events.map((e) => e.event.envelope.eventId)).toEqual([res.eventId]);
    expect(await keys.get('acme', who, 'fb-1')).toMatchObject({ state: 'done', eventId: res.eventId });
    // The prediction made before the grant kept no record; the next one does, and Feedback can name it.
    const old = await callError(feedback(client, { userId: 'trainer', predictionId: p.predictionId, label: 'spam' }));
    expect(old.code).toBe(status.NOT_FOUND);
    expect(old.details).toMatch(/is unknown or expired for this user/);
    const next = await predict(client, 'trainer', newsletter(6));
    expect(await recordIds(who)).toEqual([next.predictionId]);
    expect(await feedback(client, { userId: 'trainer', predictionId: next.predictionId, label: 'spam' })).toMatchObject({ accepted: true, duplicate: false });
  });

  it('a withdrawal of training consent refuses the next Feedback within the bound', async () => {
    const who = pseudonym('withdrawer');
    await privacy.setConsent('withdrawer', 'training', 'granted');
    await msUntil(async () => {
      try {
        await feedback(client, { userId: 'withdrawer', input: newsletter(7), label: 'ham', idempotencyKey: 'w-0' });
        return true;
      } catch {
        return false;
      }
    }, BOUND_MS);
    expect(await reader.events(who)).toHaveLength(1);

    await privacy.setConsent('withdrawer', 'training', 'withdrawn');
    let n = 0;
    const ms = await msUntil(async () => {
      try {
        await feedback(client, { userId: 'withdrawer', input: newsletter(`7-${++n}`), label: 'ham', idempotencyKey: `w-${n}` });
        return false;
      } catch (err) {
        expect((err as { code: number }).code).toBe(status.FAILED_PRECONDITION);
        expect((err as { details: string }).details).toMatch(/^the user has not granted training consent: they withdrew it\./);
        return true;
      }
    }, BOUND_MS);
    expect(ms).toBeLessThan(BOUND_MS);
    // In practice the cache has the withdrawal before SetConsent answers: the first Feedback after it is refused.
    expect(n).toBe(1);
    expect(await reader.events(who)).toHaveLength(1);
    expect(fusion.consentStats()).toMatchObject({ lookupFailures: 0 });
    expect(fusion.consentStats()!.events).toBeGreaterThanOrEqual(2);
  });

  it('refuses to start enforcing without an event bus (nothing would bring ConsentChanged)', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      await expect(
        startFusion({ grpc: { host: '127.0.0.1', port: 0 }, pseudonym: { secret: TEST_SECRET }, fusion: { privacy: { address: privacy.address } } }, fusion.logs.logger, { store }),
      ).rejects.toThrow(/fusion\.privacy\.address is set but there is no event bus/);
    } finally {
      await store.close();
    }
  });

  describe('with the privacy service unreachable', () => {
    let blind: TestFusion;
    let blindClient: InferenceClient;
    const blindScores = new ScoreLog();

    beforeAll(async () => {
      // Nothing listens there: every lookup fails (fail closed).
      const nowhere = `127.0.0.1:${await freePort()}`;
      ({ fusion: blind, client: blindClient } = await stack.addFusion({ privacy: { address: nowhere, lookupTimeoutMs: 300 } }, {}, { bus: fusionBus, ...blindScores.deps }));
    });

    it('Predict still answers with the general model and says consent could not be verified; personal-model is not asked; no record is kept', async () => {
      const p = await predict(blindClient, 'Unreachable-User-42', newsletter(8));
      expect(await recordIds(pseudonym('Unreachable-User-42'), blind)).toEqual([]);
      expect(blind.recordStats()).toMatchObject({ stored: 0, withoutConsent: 1, keyUnavailable: 0 });
      // Feedback by its id: UNAVAILABLE (consent cannot be verified), not "unknown prediction".
      const byId = await callError(feedback(blindClient, { userId: 'Unreachable-User-42', predictionId: p.predictionId, label: 'spam' }));
      expect(byId.code).toBe(status.UNAVAILABLE);
      expect(p.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
      expect(fallbacksOf(p)).toEqual([{ reason: R.FALLBACK_REASON_NO_CONSENT, role: Role.MODEL_ROLE_PERSONAL, detail: expect.stringMatching(/^personalization consent could not be verified/) }]);
      expect(blindScores.requests).toHaveLength(0);
      expect(blind.consentStats()!.lookupFailures).toBeGreaterThanOrEqual(1);
    });

    it('Feedback is refused with UNAVAILABLE, nothing published, the key not kept', async () => {
      const who = pseudonym('Unreachable-User-42');
      const err = await callError(feedback(blindClient, { userId: 'Unreachable-User-42', input: newsletter(9), label: 'spam', idempotencyKey: 'u-1' }));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toMatch(/^feedback not recorded: training consent could not be verified .*nothing was stored or published, retry/);
      expect(await reader.events(who)).toEqual([]);
      expect(await (await FeedbackKeys.open(blind.store, { retentionMs: 3_600_000 })).get('acme', who, 'u-1')).toBeUndefined();
      // The user's id appears in no log line, the failed lookups' warnings included.
      expect(blind.logs.text()).toContain('consent cache: a lookup failed');
      expect(blind.logs.text()).not.toContain('Unreachable-User-42');
    });
  });
});
