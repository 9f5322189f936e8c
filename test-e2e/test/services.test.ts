import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiMassClient, InvalidArgumentError, NotFoundError, TrainingAdminClient, UnavailableError, type PredictionResult } from '@aimass/sdk';
import { trainGeneral } from '@aimass/train-general';
import { freePort, healthStatus, NatsServer, tempDir, TestProcess, waitUntil, type TempDir } from '@aimass/testing';
import { credentials, Metadata } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { repositoryRoot } from '../src/index.js';

// The services of a Predict and of a Feedback, each its own process as in the cluster, started
// from their built mains (nx builds them before this target), coordinated by a real nats-server.
const mains = {
  general: join(repositoryRoot, 'services/general-model/dist/main.js'),
  personal: join(repositoryRoot, 'services/personal-model/dist/main.js'),
  fusion: join(repositoryRoot, 'services/fusion/dist/main.js'),
  updater: join(repositoryRoot, 'services/updater/dist/main.js'),
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

describe('general-model, personal-model, fusion and updater as separate processes on NATS', () => {
  let dir: TempDir;
  let nats: NatsServer;
  const procs: TestProcess[] = [];
  let ports: { general: number; personal: number; fusion: number; updater: number };
  let client: AiMassClient;
  let training: TrainingAdminClient;
  let events: Record<string, string>;

  async function startPersonal(): Promise<TestProcess> {
    const started = await TestProcess.start(process.execPath, {
      args: [mains.personal],
      env: { AIMASS_GRPC__PORT: String(ports.personal), AIMASS_STORE__PATH: join(dir.path, 'personal-model.sqlite'), ...events },
      ready: /personal-model serving/,
      timeoutMs: 60_000,
    });
    procs.push(started.process);
    return started.process;
  }

  async function startUpdater(): Promise<TestProcess> {
    const started = await TestProcess.start(process.execPath, {
      args: [mains.updater],
      env: {
        AIMASS_GRPC__PORT: String(ports.updater),
        AIMASS_STORE__PATH: join(dir.path, 'updater.sqlite'),
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_UPDATER__GENERAL_MODEL__ADDRESS: `127.0.0.1:${ports.general}`,
        AIMASS_UPDATER__PERSONAL_MODEL__ADDRESS: `127.0.0.1:${ports.personal}`,
        ...events,
      },
      ready: /updater serving/,
      timeoutMs: 60_000,
    });
    procs.push(started.process);
    return started.process;
  }

  /** Waits until the updater has applied every feedback event the tenant and the user sent. */
  async function settled(userId: string, timeoutMs = 20_000): Promise<void> {
    await waitUntil(
      async () => {
        const state = await training.trainingState(userId);
        return state.pendingEvents === 0 && (state.user?.pendingEvents ?? 0) === 0;
      },
      `the updater to apply ${userId}'s feedback`,
      timeoutMs,
      50,
    );
  }

  beforeAll(async () => {
    dir = await tempDir('aimass-e2e-services-');
    nats = await NatsServer.start();
    events = { AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: nats.url };
    const repository = join(dir.path, 'models');
    await trainGeneral({ repository, model: 'general', version: 1, minAccuracy: 0.98 });
    ports = { general: await freePort(), personal: await freePort(), fusion: await freePort(), updater: await freePort() };
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
        ...events,
      },
      ready: /fusion serving/,
      timeoutMs: 60_000,
    });
    procs.push(fusion.process);
    await startUpdater();
    client = new AiMassClient({ address: `127.0.0.1:${ports.fusion}`, tenant: TENANT, defaultDeadlineMs: 10_000 });
    training = new TrainingAdminClient({ address: `127.0.0.1:${ports.updater}`, tenant: TENANT, defaultDeadlineMs: 10_000 });
  }, 240_000);

  afterAll(async () => {
    client?.close();
    training?.close();
    for (const p of procs) await p.dispose();
    await nats?.dispose();
    await dir?.remove();
  });

  const spamProbability = (p: PredictionResult) => p.probabilities['spam'] ?? Number.NaN;

  /** The user's personal model as personal-model stores it: examples learnt and versions kept (newest first). */
  async function personalModel(pseudonym: string): Promise<{ exampleCount: number; versions: number[] }> {
    const c = new v1.PersonalModelServiceClient(`127.0.0.1:${ports.personal}`, credentials.createInsecure());
    const call = <Req, Res>(method: (r: Req, m: Metadata, o: { deadline: number }, cb: (e: Error | null, r?: Res) => void) => unknown, req: Req) =>
      new Promise<Res>((resolve, reject) => {
        const md = new Metadata();
        md.set('x-aimass-tenant', TENANT);
        method.call(c, req, md, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!)));
      });
    try {
      const got = await call<v1.GetModelRequest, v1.GetModelResponse>(c.getModel, { userPseudonym: pseudonym, version: 0, includeParameters: false });
      const listed = await call<v1.ListVersionsRequest, v1.ListVersionsResponse>(c.listVersions, v1.ListVersionsRequest.fromPartial({ userPseudonym: pseudonym }));
      return { exampleCount: Number(got.model!.exampleCount), versions: listed.versions.map((v) => Number(v.version)) };
    } finally {
      c.close();
    }
  }

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
      // Feedback is durable when it returns; the updater applies it moments later.
      await settled('alice@example.com');
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

  it('applies every acknowledged feedback exactly once across an updater SIGKILL and restart', { timeout: 120_000 }, async () => {
    const user = 'dave@example.com';
    const updater = procs.find((p) => p.running && p.output.includes('updater serving'))!;
    const sent: string[] = [];
    const p = await client.predict(user, NEWSLETTER);
    // A stream of distinct feedback; the updater is killed in the middle of it.
    for (let i = 0; i < 30; i++) {
      const fb = await client.feedback({ userId: user, predictionId: p.predictionId, label: i % 2 === 0 ? 'spam' : 'ham', idempotencyKey: `dave-${i}` });
      expect(fb.duplicate).toBe(false);
      sent.push(fb.eventId);
      if (i === 12) {
        updater.signal('SIGKILL');
        await updater.waitForExit(10_000);
      }
    }
    // Feedback kept being accepted while no updater ran: it waits in the stream.
    await startUpdater();
    // The killed replica's partition comes back after its lease expires, and the event it had in
    // hand after the server's ack wait: up to leaseTtlMs + ackWaitMs (10 s + 10 s by default).
    await settled(user, 45_000);
    const state = await training.trainingState(user);
    // Every event is in the model once: as many examples as distinct events, sequences contiguous.
    const model = await personalModel(state.user!.userPseudonym);
    expect(new Set(sent).size).toBe(30);
    expect(model.exampleCount).toBe(30);
    // The versions kept are consecutive, newest first: none skipped, none written twice.
    expect(model.versions.length).toBeGreaterThan(0);
    expect(model.versions).toEqual(model.versions.map((_, i) => model.versions[0]! - i));
    expect(state.user!.currentVersion).toBe(model.versions[0]);
    // A repeat of an applied event (same idempotency key) has no second effect.
    const again = await client.feedback({ userId: user, predictionId: p.predictionId, label: 'spam', idempotencyKey: 'dave-0' });
    expect(again.duplicate).toBe(true);
    await settled(user);
    expect((await personalModel(state.user!.userPseudonym)).exampleCount).toBe(30);
  });

  it('answers UNAVAILABLE to Feedback while NATS is down, and records it once retried after', { timeout: 120_000 }, async () => {
    const user = 'erin@example.com';
    const p = await client.predict(user, NEWSLETTER);
    await nats.kill();
    await expect(client.feedback({ userId: user, predictionId: p.predictionId, label: 'spam', idempotencyKey: 'erin-1' }, { deadlineMs: 8_000 })).rejects.toBeInstanceOf(UnavailableError);
    await nats.restart();
    let recorded: { duplicate: boolean } | undefined;
    await waitUntil(
      async () => {
        recorded = await client.feedback({ userId: user, predictionId: p.predictionId, label: 'spam', idempotencyKey: 'erin-1' }).catch(() => undefined);
        return recorded !== undefined;
      },
      'Feedback to succeed after NATS is back',
      30_000,
      250,
    );
    await settled(user);
    const state = await training.trainingState(user);
    expect((await personalModel(state.user!.userPseudonym)).exampleCount).toBe(1);
  });

  it('drains every service on SIGTERM', { timeout: 60_000 }, async () => {
    const alive = procs.filter((p) => p.running);
    expect(alive.length).toBe(4);
    for (const p of alive.reverse()) {
      p.signal('SIGTERM');
      expect((await p.waitForExit(30_000)).code).toBe(0);
    }
  });
});
