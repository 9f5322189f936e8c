import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiMassClient, InvalidArgumentError, NotFoundError, type PredictionResult } from '@aimass/sdk';
import { trainGeneral } from '@aimass/train-general';
import { freePort, healthStatus, tempDir, TestProcess, waitUntil, type TempDir } from '@aimass/testing';
import { repositoryRoot } from '../src/index.js';

// The three services of a Predict, each its own process as in the cluster, started from their
// built mains (nx builds them before this target).
const mains = {
  general: join(repositoryRoot, 'services/general-model/dist/main.js'),
  personal: join(repositoryRoot, 'services/personal-model/dist/main.js'),
  fusion: join(repositoryRoot, 'services/fusion/dist/main.js'),
};

const SECRET = 'e2e-pseudonym-secret-0123456789-abcdefghijklmnop';
const TENANT = 'acme';

// A newsletter the corpus would call ham-ish or spam-ish; what matters is that Alice disagrees
// with whatever the general model says, and Bob does not.
const NEWSLETTER = {
  subject: 'This week at ShopMart: garden furniture and grills',
  body: 'Our best prices this week on garden furniture, grills and patio heaters. Visit shopmart today, offers end Sunday.',
  headers: { From: 'ShopMart Deals <deals@shopmart.example>', 'List-Id': '<deals.shopmart.example>' },
};

describe('general-model, personal-model and fusion as separate processes', () => {
  let dir: TempDir;
  const procs: TestProcess[] = [];
  let ports: { general: number; personal: number; fusion: number };
  let client: AiMassClient;

  async function startPersonal(): Promise<TestProcess> {
    const started = await TestProcess.start(process.execPath, {
      args: [mains.personal],
      env: { AIMASS_GRPC__PORT: String(ports.personal), AIMASS_STORE__PATH: join(dir.path, 'personal-model.sqlite') },
      ready: /personal-model serving/,
      timeoutMs: 60_000,
    });
    procs.push(started.process);
    return started.process;
  }

  beforeAll(async () => {
    dir = await tempDir('aimass-e2e-services-');
    const repository = join(dir.path, 'models');
    await trainGeneral({ repository, model: 'general', version: 1, minAccuracy: 0.98 });
    ports = { general: await freePort(), personal: await freePort(), fusion: await freePort() };
    const general = await TestProcess.start(process.execPath, {
      args: [mains.general],
      env: { AIMASS_GRPC__PORT: String(ports.general), AIMASS_GENERAL_MODEL__REPOSITORY: repository },
      ready: /general-model serving/,
      timeoutMs: 60_000,
    });
    procs.push(general.process);
    await startPersonal();
    const fusion = await TestProcess.start(process.execPath, {
      args: [mains.fusion],
      env: {
        AIMASS_GRPC__PORT: String(ports.fusion),
        AIMASS_STORE__PATH: join(dir.path, 'fusion.sqlite'),
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_FUSION__GENERAL_MODEL__ADDRESS: `127.0.0.1:${ports.general}`,
        AIMASS_FUSION__PERSONAL_MODEL__ADDRESS: `127.0.0.1:${ports.personal}`,
        // A killed personal model must show as a fallback on every call, not as an open circuit.
        AIMASS_FUSION__PERSONAL_MODEL__CIRCUIT_FAILURE_THRESHOLD: '0',
      },
      ready: /fusion serving/,
      timeoutMs: 60_000,
    });
    procs.push(fusion.process);
    client = new AiMassClient({ address: `127.0.0.1:${ports.fusion}`, tenant: TENANT, defaultDeadlineMs: 10_000 });
  }, 240_000);

  afterAll(async () => {
    client?.close();
    for (const p of procs) await p.dispose();
    await dir?.remove();
  });

  const spamProbability = (p: PredictionResult) => p.probabilities['spam'] ?? Number.NaN;

  it('answers with the general model and says why when the user has no personal model', async () => {
    expect(await healthStatus(`127.0.0.1:${ports.fusion}`, 'aimass.v1.InferenceService')).toBe('SERVING');
    const first = await client.predict('alice@example.com', NEWSLETTER);
    expect(['ham', 'spam']).toContain(first.label);
    expect(first.provenance.fallbacks.map((f) => f.reason)).toContain('no_personal_model');
    expect(first.provenance.models.map((m) => m.role)).toContain('general');
    expect(first.provenance.timingsMs.total).toBeGreaterThan(0);
  });

  it("learns from one user's feedback: her next Predict changes, another user's does not", async () => {
    const before = await client.predict('alice@example.com', NEWSLETTER);
    const bobBefore = await client.predict('bob@example.com', NEWSLETTER);
    const wanted = before.label === 'spam' ? 'ham' : 'spam';
    let after = before;
    for (let i = 0; i < 12 && after.label !== wanted; i++) {
      const fb = await client.feedback({ userId: 'alice@example.com', predictionId: after.predictionId, label: wanted, idempotencyKey: `alice-${i}` });
      expect(fb.accepted).toBe(true);
      after = await client.predict('alice@example.com', NEWSLETTER);
    }
    expect(after.label).toBe(wanted);
    expect(after.provenance.fallbacks).toEqual([]);
    expect(after.provenance.models.map((m) => m.role)).toEqual(expect.arrayContaining(['general', 'personal']));
    // Moved toward her label.
    if (wanted === 'ham') expect(spamProbability(after)).toBeLessThan(spamProbability(before));
    else expect(spamProbability(after)).toBeGreaterThan(spamProbability(before));

    const bobAfter = await client.predict('bob@example.com', NEWSLETTER);
    expect(bobAfter.label).toBe(bobBefore.label);
    expect(spamProbability(bobAfter)).toBeCloseTo(spamProbability(bobBefore), 5);
  });

  it('records the same feedback once, and refuses a bad label and an unknown prediction id', async () => {
    const p = await client.predict('carol@example.com', NEWSLETTER);
    const a = await client.feedback({ userId: 'carol@example.com', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'carol-once' });
    const b = await client.feedback({ userId: 'carol@example.com', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'carol-once' });
    expect(b.duplicate).toBe(true);
    expect(b.eventId).toBe(a.eventId);
    await expect(client.feedback({ userId: 'carol@example.com', predictionId: p.predictionId, label: 'junk' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.feedback({ userId: 'carol@example.com', predictionId: 'no-such-prediction', label: 'spam' })).rejects.toBeInstanceOf(NotFoundError);
    // Another tenant cannot refer to carol's prediction.
    const other = new AiMassClient({ address: `127.0.0.1:${ports.fusion}`, tenant: 'globex', defaultDeadlineMs: 10_000 });
    try {
      await expect(other.feedback({ userId: 'carol@example.com', predictionId: p.predictionId, label: 'spam' })).rejects.toBeInstanceOf(NotFoundError);
    } finally {
      other.close();
    }
  });

  it('falls back to the general model while personal-model is down, and finds the stored model after its restart', { timeout: 120_000 }, async () => {
    const learned = await client.predict('alice@example.com', NEWSLETTER);
    const personal = procs.find((p) => p.output.includes('personal-model serving'))!;
    personal.signal('SIGKILL');
    await personal.waitForExit(10_000);

    const degraded = await client.predict('alice@example.com', NEWSLETTER);
    expect(degraded.provenance.fallbacks.map((f) => f.reason)).toContain('personal_error');
    expect(degraded.provenance.appliedStrategy).toBe('general');

    await startPersonal();
    // fusion's channel reconnects within its capped backoff (2 s); until then the fallback holds.
    let restored = degraded;
    await waitUntil(async () => {
      restored = await client.predict('alice@example.com', NEWSLETTER);
      return restored.provenance.fallbacks.length === 0;
    }, 'fusion to use the restarted personal model', 10_000, 200);
    expect(restored.label).toBe(learned.label);
    expect(spamProbability(restored)).toBeCloseTo(spamProbability(learned), 5);
  });

  it('drains every service on SIGTERM', { timeout: 60_000 }, async () => {
    const alive = procs.filter((p) => p.running);
    expect(alive.length).toBe(3);
    for (const p of alive.reverse()) {
      p.signal('SIGTERM');
      expect((await p.waitForExit(30_000)).code).toBe(0);
    }
  });
});
