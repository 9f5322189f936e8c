import { status } from '@grpc/grpc-js';
import type { RunningGeneralModel } from '@aimass/general-model';
import { durationToMs, v1 } from '@aimass/proto';
import { freePort, tempDir, type TempDir } from '@aimass/testing';
import { startGeneralModel } from '@aimass/general-model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFusion, type TestFusion } from './support/fusion.js';
import { addToyGeneralModel } from './support/general.js';
import { callError, feedback, inferenceClient, predict, text, type InferenceClient } from './support/grpc.js';
import { captureLogs } from './support/logs.js';
import { startPersonal, type TestPersonal } from './support/personal.js';
import { SlowProxy } from '@aimass/testing';

const S = v1.FusionStrategy;
const R = v1.FallbackReason;

describe('fallbacks: the personal model absent, slow, failing or paired with another general version', () => {
  let dir: TempDir;
  let general: RunningGeneralModel;
  let personal: TestPersonal;
  const started: { fusion: TestFusion; client: InferenceClient }[] = [];
  const logs = captureLogs('downstream');

  const fusionWith = async (addresses: Partial<{ general: string; personal: string }>, config: Parameters<typeof startTestFusion>[1] = {}) => {
    const fusion = await startTestFusion({ general: general.address, personal: personal.address, ...addresses }, config);
    const entry = { fusion, client: inferenceClient(fusion.address) };
    started.push(entry);
    return entry;
  };

  beforeAll(async () => {
    dir = await tempDir('fusion-fallbacks');
    await addToyGeneralModel(dir.path, 1);
    await addToyGeneralModel(dir.path, 2);
    [general, personal] = await Promise.all([
      startGeneralModel(
        { grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, generalModel: { repository: dir.path, poolSize: 1, executionProviders: ['cpu'], warmup: false, versionPolicy: 'all' } },
        logs.logger,
      ),
      startPersonal(logs.logger),
    ]);
  });
  afterAll(async () => {
    for (const s of started) {
      s.client.close();
      await s.fusion.shutdown();
    }
    await personal?.stop();
    await general?.stop();
    await dir?.remove();
  });

  it('personal model down: still OK with the general answer, PERSONAL_ERROR saying UNAVAILABLE, then the circuit opens', async () => {
    const down = `127.0.0.1:${await freePort()}`;
    const { client } = await fusionWith({ personal: down }, { personalModel: { circuitFailureThreshold: 3, circuitOpenMs: 60_000 } });
    const reasons: v1.FallbackReason[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await predict(client, 'mona', text(`project review ${i}`), { includeComponents: true });
      expect(p.label).toBe(p.general!.label);
      expect(p.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
      const [fallback] = p.provenance!.fallbacks;
      reasons.push(fallback!.reason);
      if (fallback!.reason === R.FALLBACK_REASON_PERSONAL_ERROR) expect(fallback!.detail).toMatch(/personal model failed: UNAVAILABLE/);
      else expect(fallback!.detail).toMatch(/skipped after repeated failures; next try in \d+ ms/);
    }
    expect(reasons).toEqual([
      R.FALLBACK_REASON_PERSONAL_ERROR,
      R.FALLBACK_REASON_PERSONAL_ERROR,
      R.FALLBACK_REASON_PERSONAL_ERROR,
      R.FALLBACK_REASON_CIRCUIT_OPEN,
      R.FALLBACK_REASON_CIRCUIT_OPEN,
    ]);
    // Feedback cannot be acknowledged without the personal model: a retryable status, not INTERNAL.
    const err = await callError(feedback(client, { userId: 'mona', input: text('project review'), label: 'ham', idempotencyKey: 'k' }));
    expect(err.code).toBe(status.UNAVAILABLE);
  });

  it('slow personal model: PERSONAL_TIMEOUT within its sub-deadline, the request still answered in time', async () => {
    const proxy = await SlowProxy.start(personal.address);
    proxy.delayMs = 400;
    try {
      const { client } = await fusionWith({ personal: proxy.address }, { budget: { maxPersonalMs: 100 } });
      const started = Date.now();
      const p = await predict(client, 'nina', text('free money'), {}, { deadlineMs: 2_000 });
      const elapsed = Date.now() - started;
      expect(p.provenance!.fallbacks).toEqual([expect.objectContaining({ reason: R.FALLBACK_REASON_PERSONAL_TIMEOUT, detail: expect.stringMatching(/did not answer within its share of the deadline \(100 ms\)/) })]);
      const personalStage = p.provenance!.timings.find((t) => t.stage === v1.Stage.STAGE_PERSONAL_MODEL)!;
      expect(durationToMs(personalStage.duration!)).toBeGreaterThanOrEqual(90);
      expect(durationToMs(personalStage.duration!)).toBeLessThan(400);
      expect(elapsed).toBeLessThan(1_500);
    } finally {
      await proxy.close();
    }
  });

  it('too little deadline left for the personal model: PERSONAL_TIMEOUT without trying it', async () => {
    // 5 s of personal budget need 5000 / 0.8 (the personal share) = 6250 ms left.
    const { client } = await fusionWith({}, { budget: { minPersonalMs: 5_000 } });
    const p = await predict(client, 'olga', text('free money'), { strategy: S.FUSION_STRATEGY_INTERPOLATE }, { deadlineMs: 3_000 });
    expect(p.provenance!.requestedStrategy).toBe(S.FUSION_STRATEGY_INTERPOLATE);
    expect(p.provenance!.fallbacks).toEqual([expect.objectContaining({ reason: R.FALLBACK_REASON_PERSONAL_TIMEOUT, detail: expect.stringMatching(/the personal model needs at least 6250 ms/) })]);
  });

  it('a personal model paired with another general version: GENERAL_VERSION_MISMATCH, general answer', async () => {
    const { client } = await fusionWith({});
    // Feedback on an input trains against the default general version.
    await feedback(client, { userId: 'paul', input: text('weekly offers newsletter'), label: 'spam', idempotencyKey: 'v1' });
    const paired = await predict(client, 'paul', text('weekly offers newsletter'));
    expect(paired.provenance!.fallbacks).toEqual([]);
    const pairedVersion = paired.provenance!.models[0]!.model!.version;
    const otherVersion = pairedVersion === '1' ? '2' : '1';
    const other = await predict(client, 'paul', text('weekly offers newsletter'), { generalModel: { name: 'general', version: otherVersion }, includeComponents: true });
    expect(other.provenance!.models[0]!.model).toEqual({ name: 'general', version: otherVersion });
    expect(other.provenance!.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(other.provenance!.fallbacks).toEqual([
      { reason: R.FALLBACK_REASON_GENERAL_VERSION_MISMATCH, role: v1.ModelRole.MODEL_ROLE_PERSONAL, detail: `the personal model is paired with general model general:${pairedVersion} and awaits a refit` },
    ]);
    expect(other.label).toBe(other.general!.label);
  });

  it('general model down: UNAVAILABLE (the answer needs it), not INTERNAL', async () => {
    const { client } = await fusionWith({ general: `127.0.0.1:${await freePort()}` });
    const err = await callError(predict(client, 'quinn', text('hi')));
    expect(err.code).toBe(status.UNAVAILABLE);
  });
});
