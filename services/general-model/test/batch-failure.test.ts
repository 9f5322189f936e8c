import { status } from '@grpc/grpc-js';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addModel, badWarmupModel, lookupModel } from './support/models.js';
import { call, callError, inferenceClient, startService } from './support/harness.js';
import type { inference } from '@aimass/proto';

function idsRequest(ids: number[], id: string): inference.ModelInferRequest {
  return {
    modelName: 'lookup',
    modelVersion: '',
    id,
    parameters: {},
    inputs: [{ name: 'ids', datatype: 'INT64', shape: [ids.length / 2, 2], parameters: {}, contents: { boolContents: [], intContents: [], int64Contents: ids, uintContents: [], uint64Contents: [], fp32Contents: [], fp64Contents: [], bytesContents: [] } }],
    outputs: [],
    rawInputContents: [],
  };
}

describe('a batch that fails because of one request', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  let client: ReturnType<typeof inferenceClient> | undefined;

  beforeEach(async () => {
    dir = await tempDir('gm-batchfail');
    await addModel(dir.path, 'lookup', 1, lookupModel());
  });
  afterEach(async () => {
    client?.close();
    await service?.stop();
    await dir.remove();
  });

  it('answers the other requests of the batch, and only the bad one fails, with onnxruntime\'s reason', async () => {
    service = await startService(dir.path, { batching: { maxQueueDelayMs: 200, maxBatchSize: 8 } });
    const c = (client = inferenceClient(service.address));
    const runsBefore = service.stats().pool.runs;
    const [good1, err, good2] = await Promise.all([
      call(c, c.modelInfer, idsRequest([0, 1], 'good1')),
      callError(call(c, c.modelInfer, idsRequest([2, 9], 'bad'))),
      call(c, c.modelInfer, idsRequest([3, 3, 2, 0], 'good2')),
    ]);
    // The three went as one batch of 4 rows, which failed, then each alone (the pool counts the
    // runs that succeeded: the two good requests').
    expect(service.stats().batchers['lookup:1']!.largestBatch).toBe(4);
    expect(service.stats().pool.runs - runsBefore).toBe(2);
    expect(good1.outputs[0]!.contents!.fp32Contents).toEqual([11]);
    expect(good2.outputs[0]!.contents!.fp32Contents).toEqual([2000, 101]);
    expect(status[err.code]).toBe('INVALID_ARGUMENT');
    expect(err.details).toMatch(/^model lookup:1 could not run this request's inputs: .*out of (data )?bounds/i);
    // ModelStatistics counts the two reruns that answered, each at its own batch size; the bad
    // request is a failure.
    const { modelStats } = await call(c, c.modelStatistics, { name: 'lookup', version: '' });
    const stats = modelStats[0]!;
    expect(stats.executionCount).toBe(2);
    expect(stats.batchStats.map((b) => b.batchSize).sort()).toEqual([1, 2]);
    expect(stats.inferenceStats!.success!.count).toBe(2);
    expect(stats.inferenceStats!.fail!.count).toBe(1);
  });

  it('when every request of the batch fails alone too, and the model runs on zeros, each gets INVALID_ARGUMENT', async () => {
    service = await startService(dir.path, { batching: { maxQueueDelayMs: 200, maxBatchSize: 8 } });
    const c = (client = inferenceClient(service.address));
    const runsBefore = service.stats().pool.runs;
    const errors = await Promise.all([idsRequest([9, 0], 'a'), idsRequest([0, 7], 'b')].map((r) => callError(call(c, c.modelInfer, r))));
    expect(service.stats().batchers['lookup:1']!.largestBatch).toBe(2);
    expect(errors.map((e) => status[e.code])).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    expect(errors[0]!.details).toMatch(/^model lookup:1 could not run this request's inputs: .*out of (data )?bounds/i);
    // The one run that answered: the probe (one row of zeros), not counted in ModelStatistics.
    expect(service.stats().pool.runs - runsBefore).toBe(1);
    const { modelStats } = await call(c, c.modelStatistics, { name: 'lookup', version: '' });
    expect(modelStats[0]!.executionCount).toBe(0);
    expect(modelStats[0]!.inferenceStats!.fail!.count).toBe(2);
  });

  it('a request alone in its batch that the model refuses gets INVALID_ARGUMENT; one probe answers for a burst of them', async () => {
    service = await startService(dir.path, { batching: { maxQueueDelayMs: 0, maxBatchSize: 8 } });
    const c = (client = inferenceClient(service.address));
    const runsBefore = service.stats().pool.runs;
    for (const id of ['x', 'y', 'z']) {
      const err = await callError(call(c, c.modelInfer, idsRequest([0, 4], id)));
      expect(status[err.code]).toBe('INVALID_ARGUMENT');
      expect(err.details).toMatch(/^model lookup:1 could not run this request's inputs: /);
    }
    expect(service.stats().batchers['lookup:1']!.largestBatch).toBe(1);
    // Three refused runs, one probe that answered: its answer is reused for a second.
    expect(service.stats().pool.runs - runsBefore).toBe(1);
  });

  it('a model that fails on one row of zeros too is failing itself: INTERNAL, and its valid requests still run', async () => {
    // Without the warm-up, which would have refused this model at load: one row (3 elements) cannot become [2, -1].
    await addModel(dir.path, 'bad_warmup', 1, badWarmupModel());
    service = await startService(dir.path, { warmup: false, batching: { maxQueueDelayMs: 0, maxBatchSize: 8 } });
    const c = (client = inferenceClient(service.address));
    const request = (rows: number): inference.ModelInferRequest => ({
      modelName: 'bad_warmup',
      modelVersion: '',
      id: `rows-${rows}`,
      parameters: {},
      inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 3], parameters: {}, contents: { boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [], fp32Contents: Array.from({ length: rows * 3 }, (_, i) => i), fp64Contents: [], bytesContents: [] } }],
      outputs: [],
      rawInputContents: [],
    });
    const err = await callError(call(c, c.modelInfer, request(1)));
    expect(status[err.code]).toBe('INTERNAL');
    const ok = await call(c, c.modelInfer, request(2));
    expect(ok.outputs[0]!.shape).toEqual([2, 3]);
  });

  it('keeps serving afterwards', async () => {
    service = await startService(dir.path, { batching: { maxQueueDelayMs: 0, maxBatchSize: 8 } });
    const c = (client = inferenceClient(service.address));
    await callError(call(c, c.modelInfer, idsRequest([4, 0], 'bad')));
    const after = await call(c, c.modelInfer, idsRequest([1, 1], 'after'));
    expect(after.outputs[0]!.contents!.fp32Contents).toEqual([20]);
  });
});
