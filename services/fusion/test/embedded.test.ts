import { stat } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { createInProcessBus, type EventBus } from '@aimass/events';
import { join } from 'node:path';
import type { RunningGeneralModel } from '@aimass/general-model';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, type TempDir } from '@aimass/testing';
import { v1 } from '@aimass/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_SECRET_FILE, FUSION_GRPC_SERVICES, createFusionEmbedded, type FusionEmbeddedEnvironment } from '../src/index.js';
import { addToyGeneralModel, startGeneral } from './support/general.js';
import { TEST_SECRET } from './support/fusion.js';
import { callError, feedback, inferenceClient, predict, text } from './support/grpc.js';
import { captureLogs } from './support/logs.js';
import { startTestPrivacy } from './support/privacy.js';
import { startPersonal, type TestPersonal } from './support/personal.js';

describe('the embedded (one-process) fusion service', () => {
  let dir: TempDir;
  let general: RunningGeneralModel;
  let personal: TestPersonal;
  const stores: DocumentStore[] = [];
  const logs = captureLogs('embedded');

  beforeAll(async () => {
    dir = await tempDir('fusion-embedded');
    await addToyGeneralModel(join(dir.path, 'models'));
    [general, personal] = await Promise.all([startGeneral(join(dir.path, 'models'), logs.logger), startPersonal(logs.logger)]);
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await personal?.stop();
    await general?.stop();
    await dir?.remove();
  });

  const environment = (dataDir: string, more: { privacy?: string; bus?: EventBus } = {}): FusionEmbeddedEnvironment & { opened: string[] } => {
    const opened: string[] = [];
    return {
      dataDir,
      logger: logs.logger,
      host: '127.0.0.1',
      port: 0,
      bus: more.bus,
      opened,
      async openStore(name) {
        opened.push(name);
        const store = await openSqliteStore({ path: join(dataDir, `${name}.sqlite`) });
        stores.push(store);
        return store;
      },
      addressOf(name) {
        if (name === 'general-model') return general.address;
        if (name === 'personal-model') return personal.address;
        if (name === 'privacy' && more.privacy) return more.privacy;
        throw new Error(`service "${name}" is not running yet`);
      },
    };
  };

  it('wires itself to the services started before it, and keeps pseudonyms stable across restarts', async () => {
    const dataDir = join(dir.path, 'run');
    const env = environment(dataDir);
    // Without the runner's privacy service (this test has none): no consent enforced, nothing encrypted.
    const embedded = createFusionEmbedded({ env: {}, privacy: false });
    expect(embedded.name).toBe('fusion');
    const first = await embedded.start(env);
    expect(first.grpcServices).toEqual(FUSION_GRPC_SERVICES);
    expect(first.grpcServices).toEqual(['aimass.v1.InferenceService', 'aimass.v1.TenantAdminService', 'aimass.v1.CredentialService']);
    expect(env.opened).toEqual(['fusion']);
    const secret = await stat(join(dataDir, EMBEDDED_SECRET_FILE));
    expect(secret.mode & 0o777).toBe(0o600);

    let client = inferenceClient(first.address);
    const p = await predict(client, 'rita', text('free money offer'));
    expect(p.provenance!.fallbacks.map((f) => f.reason)).toEqual([v1.FallbackReason.FALLBACK_REASON_NO_PERSONAL_MODEL]);
    await feedback(client, { userId: 'rita', predictionId: p.predictionId, label: 'ham', idempotencyKey: 'once' });
    client.close();
    await first.stop();

    // Restarted on the same data directory: same secret, so the same pseudonym finds rita's model,
    // and the same store, so her idempotency key is remembered.
    const second = await embedded.start(env);
    client = inferenceClient(second.address);
    const again = await predict(client, 'rita', text('free money offer'));
    expect(again.provenance!.fallbacks).toEqual([]);
    expect(again.provenance!.models[1]!.model).toEqual({ name: 'personal-logreg', version: '1' });
    expect((await feedback(client, { userId: 'rita', predictionId: p.predictionId, label: 'ham', idempotencyKey: 'once' })).duplicate).toBe(true);
    client.close();
    await second.stop();
  });

  it('uses the configured secret and configuration from the environment when set', async () => {
    const dataDir = join(dir.path, 'configured');
    const embedded = createFusionEmbedded({
      env: { AIMASS_PSEUDONYM__SECRET: 'an-operator-provided-secret-of-sufficient-length', AIMASS_FUSION__DEFAULTS__STRATEGY: 'general_only' },
      privacy: false,
    });
    const running = await embedded.start(environment(dataDir));
    await expect(stat(join(dataDir, EMBEDDED_SECRET_FILE))).rejects.toThrow();
    const client = inferenceClient(running.address);
    const p = await predict(client, 'sam', text('notes from the meeting'));
    expect(p.provenance!.requestedStrategy).toBe(v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY);
    client.close();
    await running.stop();
  });

  it("uses the runner's privacy service by default, and refuses to start without one rather than run unprotected", async () => {
    const dataDir = join(dir.path, 'with-privacy');
    const bus = createInProcessBus();
    const privacy = await startTestPrivacy(bus, logs.logger);
    try {
      const embedded = createFusionEmbedded({ env: { AIMASS_PSEUDONYM__SECRET: TEST_SECRET } });
      const running = await embedded.start(environment(dataDir, { privacy: privacy.address, bus }));
      const client = inferenceClient(running.address);
      // The tenant's default (not granted) applies: the personal model is not used, Feedback is refused.
      const p = await predict(client, 'una', text('free money offer'));
      expect(p.provenance!.fallbacks.map((f) => f.reason)).toEqual([v1.FallbackReason.FALLBACK_REASON_NO_CONSENT]);
      const err = await callError(feedback(client, { userId: 'una', predictionId: p.predictionId, label: 'ham' }));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      client.close();
      await running.stop();

      await expect(embedded.start(environment(join(dir.path, 'no-privacy'), { bus }))).rejects.toThrow(
        /fusion needs the privacy service \(consent, users' data keys\) started before it: list privacy before fusion in the runner, set AIMASS_FUSION__PRIVACY__ADDRESS, or pass createFusionEmbedded\(\{ privacy: false \}\)/,
      );
    } finally {
      await privacy.stop();
      await bus.close();
    }
  });
});
