import { status } from '@grpc/grpc-js';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addModel, linearModel } from './support/models.js';
import { call, callError, inferenceClient, rawFp32Request, startService } from './support/harness.js';

/** Triton's statistics extension (ModelStatistics) on the real service: counts, batches, refusals. */
describe('ModelStatistics', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>>;
  let client: ReturnType<typeof inferenceClient>;

  beforeAll(async () => {
    dir = await tempDir('gm-stats');
    await addModel(dir.path, 'linear', 1, linearModel());
    await addModel(dir.path, 'other', 1, linearModel());
    service = await startService(dir.path);
    client = inferenceClient(service.address);
  });
  afterAll(async () => {
    client?.close();
    await service?.stop();
    await dir?.remove();
  });

  it('reports what each version served: rows, batches per size, and time per stage', async () => {
    const before = Date.now();
    const row = [1, 2, 3, 4];
    await Promise.all([
      call(client, client.modelInfer, rawFp32Request('linear', row, 1)),
      call(client, client.modelInfer, rawFp32Request('linear', row, 1)),
      call(client, client.modelInfer, rawFp32Request('linear', row, 1)),
      call(client, client.modelInfer, rawFp32Request('linear', [...row, ...row], 2)),
    ]);

    const { modelStats } = await call(client, client.modelStatistics, { name: 'linear', version: '' });
    expect(modelStats).toHaveLength(1);
    const s = modelStats[0]!;
    expect(s).toMatchObject({ name: 'linear', version: '1', inferenceCount: 5 });
    expect(s.lastInference).toBeGreaterThanOrEqual(before);
    const stats = s.inferenceStats!;
    expect(stats.success!.count).toBe(4);
    expect(stats.success!.ns).toBeGreaterThan(0);
    expect(stats.fail!.count).toBe(0);
    expect(stats.queue!.count).toBe(4);
    // However the four requests were batched, the batches hold the five rows, once each.
    expect(s.executionCount).toBeGreaterThanOrEqual(1);
    expect(s.executionCount).toBeLessThanOrEqual(4);
    expect(stats.computeInfer!.count).toBe(s.executionCount);
    expect(s.batchStats.reduce((n, b) => n + b.computeInfer!.count, 0)).toBe(s.executionCount);
    expect(s.batchStats.reduce((n, b) => n + b.batchSize * b.computeInfer!.count, 0)).toBe(5);
    expect(s.batchStats.map((b) => b.batchSize)).toEqual([...s.batchStats.map((b) => b.batchSize)].sort((a, b) => a - b));
    expect(stats.cacheHit).toEqual({ count: 0, ns: 0 });

    // The other model served nothing; an empty name lists every loaded version.
    const all = await call(client, client.modelStatistics, { name: '', version: '' });
    expect(all.modelStats.map((m) => `${m.name}:${m.version}`)).toEqual(['linear:1', 'other:1']);
    expect(all.modelStats[1]).toMatchObject({ inferenceCount: 0, executionCount: 0, lastInference: 0, batchStats: [] });
    expect((await call(client, client.serverMetadata, {})).extensions).toContain('statistics');
  });

  it('says which model or version is unknown, and that a version needs a name', async () => {
    const unknown = await callError(call(client, client.modelStatistics, { name: 'nope', version: '' }));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toMatch(/model 'nope' is not in the repository/);
    const version = await callError(call(client, client.modelStatistics, { name: 'linear', version: '9' }));
    expect(version.code).toBe(status.NOT_FOUND);
    expect(version.details).toMatch(/no loaded version '9'/);
    const nameless = await callError(call(client, client.modelStatistics, { name: '', version: '1' }));
    expect(nameless.code).toBe(status.INVALID_ARGUMENT);
    expect(nameless.details).toMatch(/a version needs the model name/);
  });
});
