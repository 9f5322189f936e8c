import { status } from '@grpc/grpc-js';
import { startGeneralModel, type RunningGeneralModel } from '@aimass/general-model';
import { RETRY_AFTER_MS_KEY } from '@aimass/platform';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFusion, type RunningFusion } from '../src/service.js';
import { TEST_SECRET } from './support/fusion.js';
import { addToyGeneralModel } from './support/general.js';
import { callError, inferenceClient, predict, text, type InferenceClient } from './support/grpc.js';
import { captureLogs } from './support/logs.js';
import { startPersonal, type TestPersonal } from './support/personal.js';

describe('per-tenant quotas on the public API (the quotas section)', () => {
  const logs = captureLogs('quotas');
  let dir: TempDir;
  let general: RunningGeneralModel;
  let personal: TestPersonal;
  let store: DocumentStore;
  let fusion: RunningFusion;
  let client: InferenceClient;

  beforeAll(async () => {
    dir = await tempDir('fusion-quotas');
    await addToyGeneralModel(dir.path, 1);
    [general, personal] = await Promise.all([
      startGeneralModel(
        { grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, generalModel: { repository: dir.path, poolSize: 1, executionProviders: ['cpu'], warmup: false } },
        logs.logger,
      ),
      startPersonal(logs.logger),
    ]);
    store = await openSqliteStore({ path: ':memory:' });
    fusion = await startFusion(
      {
        grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
        pseudonym: { secret: TEST_SECRET },
        fusion: { generalModel: { address: general.address }, personalModel: { address: personal.address } },
        // Slow enough that no token comes back during the test, however slow the machine.
        quotas: { tenants: { flood: { ratePerSecond: 0.1, burst: 2 } } },
      },
      logs.logger,
      { store },
    );
    client = inferenceClient(fusion.address);
  });

  afterAll(async () => {
    client?.close();
    await fusion?.stop();
    await store?.close();
    await personal?.stop();
    await general?.stop();
    await dir?.remove();
  });

  it('refuses Predict of a tenant over its rate with RESOURCE_EXHAUSTED and a retry hint while another tenant is answered', async () => {
    await predict(client, 'u1', text('hello there'), {}, { tenant: 'flood' });
    await predict(client, 'u1', text('hello there'), {}, { tenant: 'flood' });
    const err = await callError(predict(client, 'u1', text('hello there'), {}, { tenant: 'flood' }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/^tenant "flood" is over its rate quota of 0.1 calls\/s \(burst 2\): retry in \d+ ms$/);
    expect(Number(err.metadata.get(RETRY_AFTER_MS_KEY)[0])).toBeGreaterThan(0);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => predict(client, `u${i}`, text('win free money now'), {}, { tenant: 'acme' })));
    expect(answers.every((p) => p.label !== '')).toBe(true);
    expect(fusion.quotas.stats()).toMatchObject({ refusedRate: 1, inFlight: 0 });
  });
});
