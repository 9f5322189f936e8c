import { status } from '@grpc/grpc-js';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addModel, linearExpected, linearModel } from './support/models.js';
import { call, callError, fp32Request, inferenceClient, startService } from './support/harness.js';

describe('a crashing inference worker', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  let client: ReturnType<typeof inferenceClient> | undefined;

  beforeEach(async () => {
    dir = await tempDir('gm-crash');
    await addModel(dir.path, 'linear', 1, linearModel());
  });
  afterEach(async () => {
    client?.close();
    await service?.stop();
    await dir.remove();
    client = undefined;
    service = undefined;
  });

  async function start(poolSize = 1) {
    service = await startService(dir.path, { poolSize });
    client = inferenceClient(service.address);
    return client;
  }

  const good = async () => {
    const res = await call(client!, client!.modelInfer, fp32Request('linear', [1, 2, 3, 4], 1));
    expect(res.outputs[0]!.contents!.fp32Contents).toEqual(linearExpected([1, 2, 3, 4]));
  };

  for (const kind of ['exit', 'throw'] as const) {
    it(`fails the in-flight request with UNAVAILABLE when the worker ${kind === 'exit' ? 'calls process.exit' : 'throws'}, and is replaced`, async () => {
      const c = await start();
      service!.pool.injectFault(0, { kind, when: 'next-run' });
      const started = Date.now();
      const err = await callError(call(c, c.modelInfer, fp32Request('linear', [1, 2, 3, 4], 1), { deadlineMs: 10_000 }));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toMatch(/inference worker 0 stopped/);
      expect(Date.now() - started).toBeLessThan(5_000);
      await service!.pool.whenAllAlive();
      await good();
      expect(service!.stats().pool).toMatchObject({ crashes: 1, restarts: 1, alive: 1 });
      const lines = service!.logs.lines();
      expect(lines.some((l) => l['msg'] === 'inference worker died: replacing it')).toBe(true);
      expect(lines.some((l) => l['msg'] === 'inference worker replaced')).toBe(true);
    });
  }

  it('fails every request of a batch running on a terminated worker, none hangs', async () => {
    const c = await start();
    service!.pool.injectFault(0, { kind: 'stall', when: 'next-run', ms: 20_000 });
    const first = callError(call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1), { deadlineMs: 15_000 }));
    await waitUntil(() => service!.stats().batchers['linear:1']!.inFlight === 1, 'the first request to run');
    const queued = [1, 2, 3].map(() => call(c, c.modelInfer, fp32Request('linear', [2, 2, 2, 2], 1), { deadlineMs: 15_000 }));
    await service!.pool.terminateWorker(0);
    expect((await first).code).toBe(status.UNAVAILABLE);
    // The queued requests were not on the worker: they run on its replacement.
    const results = await Promise.all(queued);
    expect(results.map((r) => r.outputs[0]!.contents!.fp32Contents)).toEqual(Array(3).fill(linearExpected([2, 2, 2, 2])));
    await good();
  });

  it('keeps serving on the other worker while one is replaced', async () => {
    const c = await start(2);
    await service!.pool.terminateWorker(1);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => call(c, c.modelInfer, fp32Request('linear', [1, 2, 3, 4], 1))));
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as { code: number }).code).toBe(status.UNAVAILABLE);
    }
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0);
    await service!.pool.whenAllAlive();
    expect(service!.stats().pool.alive).toBe(2);
    await good();
  });
});
