import { status } from '@grpc/grpc-js';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addModel, linearExpected, linearModel } from './support/models.js';
import { call, callError, fp32Request, inferenceClient, rawFloats, rawFp32Request, startService } from './support/harness.js';

describe('dynamic batching through gRPC', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  let client: ReturnType<typeof inferenceClient> | undefined;

  beforeEach(async () => {
    dir = await tempDir('gm-batch');
    await addModel(dir.path, 'linear', 1, linearModel());
  });
  afterEach(async () => {
    client?.close();
    await service?.stop();
    await dir.remove();
    client = undefined;
    service = undefined;
  });

  async function start(config: Parameters<typeof startService>[1]) {
    service = await startService(dir.path, config);
    client = inferenceClient(service.address);
    return client;
  }

  it('runs N concurrent requests in fewer session.run calls, and gives each request its own rows', async () => {
    const c = await start({ batching: { maxQueueDelayMs: 50, maxBatchSize: 64 } });
    const runsBefore = service!.stats().pool.runs;
    const n = 24;
    const inputs = Array.from({ length: n }, (_, i) => {
      const rows = (i % 3) + 1;
      return { rows, x: Array.from({ length: rows * 4 }, (_, k) => i * 100 + k) };
    });
    const responses = await Promise.all(
      inputs.map(({ rows, x }, i) => call(c, c.modelInfer, (i % 2 ? rawFp32Request : fp32Request)('linear', x, rows, { id: `r${i}`, outputs: [{ name: 'y', parameters: {} }] }))),
    );
    for (const [i, res] of responses.entries()) {
      const { rows, x } = inputs[i]!;
      expect(res.id).toBe(`r${i}`);
      expect(res.outputs[0]!.shape).toEqual([rows, 2]);
      const y = i % 2 ? rawFloats(res.rawOutputContents[0]) : res.outputs[0]!.contents!.fp32Contents;
      expect(y).toEqual(linearExpected(x));
    }
    const runs = service!.stats().pool.runs - runsBefore;
    const batcher = service!.stats().batchers['linear:1']!;
    expect(runs).toBeLessThan(n);
    expect(batcher.batches).toBe(runs);
    expect(batcher.largestBatch).toBeGreaterThan(3);
    expect(batcher.rows).toBe(inputs.reduce((s, r) => s + r.rows, 0));
  });

  it('answers RESOURCE_EXHAUSTED when the queue is full, and serves the queued requests', async () => {
    const c = await start({ batching: { maxQueueRows: 4, maxBatchSize: 4 } });
    service!.pool.injectFault(0, { kind: 'stall', when: 'next-run', ms: 400 });
    const running = call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1));
    await waitUntil(() => service!.stats().batchers['linear:1']!.inFlight === 1, 'the first request to run');
    const queued = [1, 2, 3, 4].map((v) => call(c, c.modelInfer, fp32Request('linear', [v, 0, 0, 0], 1)));
    await waitUntil(() => service!.stats().batchers['linear:1']!.queuedRows === 4, 'four queued rows');
    const refused = await callError(call(c, c.modelInfer, fp32Request('linear', [9, 9, 9, 9], 1)));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.details).toMatch(/queue of model linear:1 is full \(4 of 4 rows\)/);
    const done = await Promise.all([running, ...queued]);
    expect(done.map((r) => r.outputs[0]!.contents!.fp32Contents[0])).toEqual([4, 1, 2, 3, 4]);
    expect(service!.stats().batchers['linear:1']!.rejectedQueueFull).toBe(1);
  });

  it('drops a request whose deadline expires while queued: DEADLINE_EXCEEDED, never run', async () => {
    const c = await start({ batching: { maxBatchSize: 8 } });
    service!.pool.injectFault(0, { kind: 'stall', when: 'next-run', ms: 400 });
    const running = call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1));
    await waitUntil(() => service!.stats().batchers['linear:1']!.inFlight === 1, 'the first request to run');
    const late = await callError(call(c, c.modelInfer, fp32Request('linear', [2, 2, 2, 2], 1), { deadlineMs: 100 }));
    expect(late.code).toBe(status.DEADLINE_EXCEEDED);
    await running;
    await waitUntil(() => service!.stats().batchers['linear:1']!.queuedRows === 0, 'an empty queue');
    const stats = service!.stats().batchers['linear:1']!;
    expect(stats.expired + stats.cancelled).toBe(1);
    expect(stats.rows).toBe(1); // only the first request's row ran (warm-up runs bypass the batcher)
    const ok = await call(c, c.modelInfer, fp32Request('linear', [1, 0, 0, 0], 1));
    expect(ok.outputs[0]!.contents!.fp32Contents).toEqual([1, 0]);
  });
});
