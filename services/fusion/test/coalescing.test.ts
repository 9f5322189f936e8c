import { InterceptingCall, Metadata, status, type Interceptor, type ServiceError } from '@grpc/grpc-js';
import { Pseudonymizer, TENANT_METADATA_KEY } from '@aimass/platform';
import { durationToMs, v1 } from '@aimass/proto';
import { freePort } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET } from './support/fusion.js';
import { call, callError, feedback, mail, options, predict, predictStream, text, type InferenceClient } from './support/grpc.js';
import { SlowProxy } from '@aimass/testing';
import { startStack, type Stack } from './support/stack.js';

const S = v1.FusionStrategy;
const R = v1.FallbackReason;
const Stage = v1.Stage;
const CLASSIFY = '/aimass.v1.GeneralModelService/Classify';
const SCORE = '/aimass.v1.PersonalModelService/Score';

/** One downstream call as fusion's client sent it: the method, the tenant metadata, the request. */
interface SentCall {
  readonly path: string;
  tenant: string;
  request: unknown;
  /** The status it ended with (undefined while in flight). */
  code: status | undefined;
}

/** Records every call fusion's downstream clients make (a client interceptor: the real services answer). */
class CallLog {
  readonly calls: SentCall[] = [];

  readonly interceptor: Interceptor = (opts, nextCall) => {
    const entry: SentCall = { path: opts.method_definition.path, tenant: '', request: undefined, code: undefined };
    this.calls.push(entry);
    return new InterceptingCall(nextCall(opts), {
      start: (metadata, listener, next) => {
        entry.tenant = String(metadata.get(TENANT_METADATA_KEY)[0] ?? '');
        next(metadata, {
          onReceiveStatus: (s, nextStatus) => {
            entry.code = s.code;
            nextStatus(s);
          },
        });
      },
      sendMessage: (message, next) => {
        entry.request = message;
        next(message);
      },
    });
  };

  get deps() {
    return { interceptors: { generalModel: [this.interceptor], personalModel: [this.interceptor] } };
  }

  /** Calls of a method made since `mark` (an index into `calls`). */
  since(mark: number, path: string): SentCall[] {
    return this.calls.slice(mark).filter((c) => c.path === path);
  }

  classifies(mark: number): v1.ClassifyRequest[] {
    return this.since(mark, CLASSIFY).map((c) => c.request as v1.ClassifyRequest);
  }

  scores(mark: number): v1.ScoreRequest[] {
    return this.since(mark, SCORE).map((c) => c.request as v1.ScoreRequest);
  }
}

const SENDER = 'digest@updates.example';
const digest = (i: number) => mail(SENDER, `team meeting digest ${i}`, `notes from the team meeting and the project review ${i}`, { 'list-id': '<digest.updates.example>' });
const stageMs = (p: v1.Prediction, stage: v1.Stage) => {
  const t = p.provenance!.timings.find((x) => x.stage === stage);
  return t ? durationToMs(t.duration!) : undefined;
};
const statusOf = (err: unknown) => (err as ServiceError).code;

/** A Predict the test can cancel. */
function cancellablePredict(client: InferenceClient, userId: string, input: v1.InputPayload, deadlineMs: number) {
  const md = new Metadata();
  md.set(TENANT_METADATA_KEY, 'acme');
  let handle: { cancel(): void } | undefined;
  const result = new Promise<v1.PredictResponse>((resolve, reject) => {
    handle = client.predict({ userId, input, options: options() }, md, { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => (err ? reject(err) : resolve(res)));
  });
  return { result, cancel: () => handle!.cancel() };
}

/** What must not depend on coalescing: everything in a prediction but its id and timings. */
function comparable(p: v1.Prediction) {
  const round = (x: number) => Number(x.toFixed(6));
  const probs = (ps: readonly v1.ClassProbability[]) => ps.map((c) => ({ label: c.label, index: c.index, probability: round(c.probability) }));
  return {
    label: p.label,
    probabilities: probs(p.probabilities),
    embedding: p.embedding.map(round),
    general: p.general ? { ...p.general, probabilities: probs(p.general.probabilities) } : undefined,
    personal: p.personal ? { ...p.personal, probabilities: probs(p.personal.probabilities) } : undefined,
    models: p.provenance!.models.map((m) => ({ ...m, weight: round(m.weight) })),
    requested: p.provenance!.requestedStrategy,
    applied: p.provenance!.appliedStrategy,
    fallbacks: p.provenance!.fallbacks,
    stages: p.provenance!.timings.map((t) => t.stage),
  };
}

describe('request coalescing: concurrent predictions share Classify and Score calls to the real models', () => {
  let stack: Stack;
  const log = new CallLog();
  let on: InferenceClient;
  let off: InferenceClient;
  const trained = ['ann', 'ben', 'cat'];

  beforeAll(async () => {
    stack = await startStack();
    on = (await stack.addFusion({}, {}, log.deps)).client;
    off = (await stack.addFusion({ coalescing: { enabled: false } }, {}, log.deps)).client;
    // Personal models for some users, so Score does real work and every strategy can apply.
    for (const user of trained) {
      for (let i = 0; i < 6; i++) await feedback(stack.client, { userId: user, input: digest(i), label: 'spam' });
    }
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('N concurrent Predicts make far fewer Classify and Score calls than N, each answered', async () => {
    const n = 48;
    const mark = log.calls.length;
    const predictions = await Promise.all(
      Array.from({ length: n }, (_, i) => predict(on, i % 2 ? trained[i % 3]! : `new-${i}`, i % 3 ? digest(100 + i) : text(`free money offer ${i}`))),
    );
    const classifies = log.classifies(mark);
    const scores = log.scores(mark);
    expect(predictions.every((p) => p.label === 'ham' || p.label === 'spam')).toBe(true);
    expect(classifies.length).toBeLessThanOrEqual(n / 4);
    expect(scores.length).toBeLessThanOrEqual(n / 4);
    // Every input went once, in some call.
    expect(classifies.reduce((sum, r) => sum + r.inputs.length, 0)).toBe(n);
    expect(scores.reduce((sum, r) => sum + r.items.length, 0)).toBe(n);
    // In a shared Score call, items are numbered by position.
    for (const r of scores) expect(r.items.map((i) => i.itemId)).toEqual(r.items.map((_, i) => String(i)));

    // Without coalescing, one call each.
    const offMark = log.calls.length;
    await Promise.all(Array.from({ length: 12 }, (_, i) => predict(off, `new-${i}`, text(`free money offer ${i}`))));
    expect(log.classifies(offMark)).toHaveLength(12);
    expect(log.scores(offMark)).toHaveLength(12);
  });

  it('PredictStream items and PredictBatch calls coalesce too', async () => {
    const mark = log.calls.length;
    const requests = Array.from({ length: 16 }, (_, i) => ({ itemId: `s${i}`, userId: trained[i % 3]!, input: digest(200 + i), options: undefined }));
    const batches = Array.from({ length: 4 }, (_, b) =>
      call(on, on.predictBatch, { items: [0, 1, 2].map((i) => ({ itemId: `b${b}-${i}`, userId: `new-${i}`, input: text(`project review ${b} ${i}`) })), options: options() }),
    );
    const [{ responses, error }, ...batchResults] = await Promise.all([predictStream(on, requests), ...batches]);
    expect(error).toBeUndefined();
    expect(responses.every((r) => r.result!.outcome!.$case === 'prediction')).toBe(true);
    expect(batchResults.flatMap((r) => r.results).every((r) => r.outcome!.$case === 'prediction')).toBe(true);
    const classifies = log.classifies(mark);
    expect(classifies.reduce((sum, r) => sum + r.inputs.length, 0)).toBe(16 + 12);
    expect(classifies.length).toBeLessThan(16 + 4);
  });

  it('answers exactly as without coalescing: every strategy, options, users with and without a model, item errors', async () => {
    const strategies = [S.FUSION_STRATEGY_UNSPECIFIED, S.FUSION_STRATEGY_GENERAL_ONLY, S.FUSION_STRATEGY_PERSONAL_ONLY, S.FUSION_STRATEGY_INTERPOLATE, S.FUSION_STRATEGY_STACKING, S.FUSION_STRATEGY_OVERRIDE];
    const requests = Array.from({ length: 30 }, (_, i) => ({
      user: i % 4 === 3 ? `stranger-${i}` : trained[i % 3]!,
      input: i % 2 ? digest(300 + i) : text(`claim your free prize ${i} or the meeting agenda`),
      opts: { strategy: strategies[i % strategies.length]!, topK: i % 3 === 0 ? 1 : 0, includeComponents: i % 2 === 0, includeEmbedding: i % 5 === 0 },
    }));
    const batch = (client: InferenceClient) =>
      call(client, client.predictBatch, {
        items: [
          { itemId: 'a', userId: 'ann', input: digest(400) },
          { itemId: 'bad', userId: 'ann', input: text('   ') },
          { itemId: 'c', userId: 'stranger', input: text('lunch on friday') },
        ],
        options: options({ includeComponents: true }),
      });
    const run = async (client: InferenceClient) => {
      const [predictions, batched] = await Promise.all([Promise.all(requests.map((r) => predict(client, r.user, r.input, r.opts))), batch(client)]);
      return { predictions: predictions.map(comparable), batch: batched.results.map((r) => (r.outcome!.$case === 'prediction' ? comparable(r.outcome!.value) : r.outcome)) };
    };
    const mark = log.calls.length;
    const coalesced = await run(on);
    expect(log.classifies(mark).length).toBeLessThan(requests.length / 2);
    const alone = await run(off);
    expect(coalesced).toEqual(alone);
    // The mix covered what it should: personal answers, fallbacks and an item error.
    expect(alone.predictions.some((p) => p.applied === S.FUSION_STRATEGY_PERSONAL_ONLY)).toBe(true);
    expect(alone.predictions.some((p) => p.fallbacks.some((f) => f.reason === R.FALLBACK_REASON_NO_PERSONAL_MODEL))).toBe(true);
    expect(alone.batch[1]).toEqual({ $case: 'error', value: { code: status.INVALID_ARGUMENT, message: 'items[1].input.text is empty: send the text to classify' } });
  });

  it('never puts two tenants in one call: each call carries one tenant and only its inputs and users', async () => {
    const tenants = ['acme', 'globex'];
    const pseudonyms = Pseudonymizer.fromConfig({ secret: TEST_SECRET });
    const mark = log.calls.length;
    await Promise.all(
      Array.from({ length: 24 }, (_, i) => {
        const tenant = tenants[i % 2]!;
        return predict(on, `${tenant}-user-${i % 3}`, text(`${tenant} project review ${i}`), {}, { tenant });
      }),
    );
    const classifies = log.since(mark, CLASSIFY);
    const scores = log.since(mark, SCORE);
    expect(new Set(classifies.map((c) => c.tenant))).toEqual(new Set(tenants));
    expect(classifies.length).toBeLessThan(24);
    for (const c of classifies) {
      for (const input of (c.request as v1.ClassifyRequest).inputs) expect(input.kind).toEqual({ $case: 'text', value: expect.stringMatching(new RegExp(`^${c.tenant} `)) });
    }
    for (const c of scores) {
      const own = new Set([0, 1, 2].map((u) => pseudonyms.pseudonymize(c.tenant, `${c.tenant}-user-${u}`)));
      for (const item of (c.request as v1.ScoreRequest).items) expect(own.has(item.userPseudonym)).toBe(true);
    }
    for (const tenant of tenants) {
      expect(classifies.filter((c) => c.tenant === tenant).reduce((n, c) => n + (c.request as v1.ClassifyRequest).inputs.length, 0)).toBe(12);
    }
  });

  describe('with a slow link to the general model', () => {
    let proxy: SlowProxy;
    let slow: InferenceClient;

    beforeAll(async () => {
      proxy = await SlowProxy.start(stack.general.address);
      slow = (await stack.addFusion({}, { general: proxy.address }, log.deps)).client;
      await predict(slow, 'ann', text('warm up the connection'));
      proxy.delayMs = 120;
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it("a member whose deadline passes gets DEADLINE_EXCEEDED alone; the others' shared call goes on", async () => {
      const mark = log.calls.length;
      const short = predict(slow, 'ann', text('short deadline'), {}, { deadlineMs: 100 }).then(
        () => 'answered',
        (err: unknown) => statusOf(err),
      );
      const others = Array.from({ length: 4 }, (_, i) => predict(slow, trained[i % 3]!, digest(500 + i), {}, { deadlineMs: 5_000 }));
      const [shortOutcome, ...answers] = await Promise.all([short, ...others]);
      expect(shortOutcome).toBe(status.DEADLINE_EXCEEDED);
      const classifies = log.classifies(mark);
      expect(classifies).toHaveLength(1);
      expect(classifies[0]!.inputs).toHaveLength(5);
      expect(log.since(mark, CLASSIFY)[0]!.code).toBe(status.OK);
      for (const p of answers) {
        expect(p.label === 'ham' || p.label === 'spam').toBe(true);
        // The wait for the shared call is the request's own general stage.
        expect(stageMs(p, Stage.STAGE_GENERAL_MODEL)).toBeGreaterThanOrEqual(200);
      }
    });

    it('a cancelled caller leaves alone; the others get their answers', async () => {
      const mark = log.calls.length;
      const cancelled = cancellablePredict(slow, 'ben', text('cancel me'), 5_000);
      const others = Array.from({ length: 3 }, (_, i) => predict(slow, `new-${i}`, text(`project review ${i}`)));
      setTimeout(() => cancelled.cancel(), 60);
      const outcome = await cancelled.result.then(
        () => 'answered',
        (err: unknown) => statusOf(err),
      );
      expect(outcome).toBe(status.CANCELLED);
      const answers = await Promise.all(others);
      expect(answers.every((p) => p.label === 'ham' || p.label === 'spam')).toBe(true);
      expect(log.classifies(mark)).toHaveLength(1);
      expect(log.since(mark, CLASSIFY)[0]!.code).toBe(status.OK);
    });

    it('every member cancelled: the shared call is cancelled too, and the next requests are served', async () => {
      const mark = log.calls.length;
      const all = Array.from({ length: 3 }, (_, i) => cancellablePredict(slow, `new-${i}`, text(`meeting ${i}`), 5_000));
      setTimeout(() => all.forEach((c) => c.cancel()), 60);
      const codes = await Promise.all(all.map((c) => c.result.then(() => 'answered', (err: unknown) => statusOf(err))));
      expect(codes).toEqual([status.CANCELLED, status.CANCELLED, status.CANCELLED]);
      const shared = log.since(mark, CLASSIFY);
      expect(shared).toHaveLength(1);
      await expect.poll(() => shared[0]!.code).toBe(status.CANCELLED);
      expect((await predict(slow, 'ann', text('after the cancel'))).label).toMatch(/^(ham|spam)$/);
    });
  });

  it("a member whose personal share of the deadline runs out falls back alone; the others' shared Score is answered", async () => {
    const proxy = await SlowProxy.start(stack.personal.address);
    try {
      const { client } = await stack.addFusion({}, { personal: proxy.address }, log.deps);
      await predict(client, 'ann', text('warm up the connection'));
      proxy.delayMs = 100;
      const mark = log.calls.length;
      const [hurried, ...patient] = await Promise.all([
        predict(client, 'ann', digest(600), {}, { deadlineMs: 200 }),
        ...trained.map((user, i) => predict(client, user, digest(610 + i), {}, { deadlineMs: 5_000 })),
      ]);
      expect(hurried.provenance!.fallbacks.map((f) => f.reason)).toEqual([R.FALLBACK_REASON_PERSONAL_TIMEOUT]);
      expect(hurried.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
      for (const p of patient) {
        expect(p.provenance!.fallbacks).toEqual([]);
        expect(p.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_STACKING);
        expect(stageMs(p, Stage.STAGE_PERSONAL_MODEL)).toBeGreaterThanOrEqual(190);
      }
      const scores = log.scores(mark);
      expect(scores).toHaveLength(1);
      expect(scores[0]!.items).toHaveLength(4);
    } finally {
      await proxy.close();
    }
  });

  it('a shared call that fails maps to each member: general down → each fails UNAVAILABLE; personal down → each falls back', async () => {
    const down = `127.0.0.1:${await freePort()}`;
    const noGeneral = (await stack.addFusion({}, { general: down }, log.deps)).client;
    let mark = log.calls.length;
    const errors = await Promise.all(Array.from({ length: 6 }, (_, i) => callError(predict(noGeneral, 'ann', text(`meeting ${i}`)))));
    expect(errors.map((e) => e.code)).toEqual(Array(6).fill(status.UNAVAILABLE));
    expect(log.classifies(mark).length).toBeLessThan(6);

    const noPersonal = (await stack.addFusion({ personalModel: { circuitFailureThreshold: 0 } }, { personal: down }, log.deps)).client;
    mark = log.calls.length;
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => predict(noPersonal, trained[i % 3]!, digest(700 + i))));
    for (const p of answers) {
      expect(p.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
      expect(p.provenance!.fallbacks).toEqual([{ reason: R.FALLBACK_REASON_PERSONAL_ERROR, role: v1.ModelRole.MODEL_ROLE_PERSONAL, detail: expect.stringMatching(/personal model failed: UNAVAILABLE/) }]);
    }
    expect(log.scores(mark).length).toBeLessThan(6);
  });

  it('counts the time a request waits to share a call in its own stages (maxDelayMs)', async () => {
    const { client } = await stack.addFusion({ coalescing: { maxDelayMs: 40 } });
    const p = await predict(client, 'ann', digest(800));
    expect(stageMs(p, Stage.STAGE_GENERAL_MODEL)).toBeGreaterThanOrEqual(39);
    expect(stageMs(p, Stage.STAGE_PERSONAL_MODEL)).toBeGreaterThanOrEqual(39);
    expect(stageMs(p, Stage.STAGE_TOTAL)).toBeGreaterThanOrEqual(78);
  });
});
