import { Metadata, status } from '@grpc/grpc-js';
import { RETRY_AFTER_MS_KEY, TENANT_METADATA_KEY } from '@aimass/platform';
import type { inference } from '@aimass/proto';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGeneralModel, type RunningGeneralModel } from '../src/index.js';
import { addModel, linearModel } from './support/models.js';
import { captureLogs, callError, fp32Request, inferenceClient } from './support/harness.js';

describe('per-tenant quotas on general-model (the quotas section)', () => {
  let dir: TempDir;
  let service: RunningGeneralModel;
  let client: ReturnType<typeof inferenceClient>;

  beforeAll(async () => {
    dir = await tempDir('gm-quotas');
    await addModel(dir.path, 'linear', 1, linearModel());
    service = await startGeneralModel(
      {
        grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
        generalModel: { repository: dir.path, poolSize: 1, executionProviders: ['cpu'] },
        // Slow enough that no token comes back during the test, however slow the machine.
        quotas: { tenants: { flood: { ratePerSecond: 0.1, burst: 2 } } },
      },
      captureLogs().logger,
    );
    client = inferenceClient(service.address);
  });
  afterAll(async () => {
    client?.close();
    await service?.stop();
    await dir?.remove();
  });

  const infer = (tenant: string) =>
    new Promise<inference.ModelInferResponse>((resolve, reject) => {
      const md = new Metadata();
      md.set(TENANT_METADATA_KEY, tenant);
      client.modelInfer(fp32Request('linear', [1, 2, 3, 4], 1), md, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res!)));
    });

  it('refuses a tenant over its rate with RESOURCE_EXHAUSTED and retry-after-ms while another tenant is served', async () => {
    await infer('flood');
    await infer('flood');
    const err = await callError(infer('flood'));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain('tenant "flood" is over its rate quota of 0.1 calls/s (burst 2)');
    expect(Number(err.metadata.get(RETRY_AFTER_MS_KEY)[0])).toBeGreaterThan(0);
    const others = await Promise.all(Array.from({ length: 10 }, () => infer('calm')));
    expect(others.every((r) => r.outputs.length > 0)).toBe(true);
    expect(service.quotas.stats()).toMatchObject({ refusedRate: 1, inFlight: 0 });
  });
});
