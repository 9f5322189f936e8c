import type * as grpc from '@grpc/grpc-js';
import { inference } from '@aimass/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindServer, newServer, type RunningServer } from './grpc-host.js';
import { ModelStatisticsReader, meanBatchRows, serviceStages, type BatchingCounters } from './model-statistics.js';

const ms = (x: number) => x * 1e6;

describe('meanBatchRows', () => {
  it('is the rows per batch run between two readings, NaN when none ran', () => {
    expect(meanBatchRows({ rows: 10, batches: 4 }, { rows: 40, batches: 14 })).toBe(3);
    expect(meanBatchRows({ rows: 10, batches: 4 }, { rows: 10, batches: 4 })).toBeNaN();
  });
});

describe('serviceStages', () => {
  const before: BatchingCounters = {
    rows: 100,
    batches: 10,
    requests: { count: 100, successNs: ms(500), queued: 100, queueNs: ms(100) },
    stagesNs: { input: ms(1), infer: ms(20), output: ms(2) },
  };

  it('is the mean time per request and per batch stage between two readings', () => {
    const after: BatchingCounters = {
      rows: 500,
      batches: 35,
      requests: { count: 500, successNs: ms(500 + 4000), queued: 600, queueNs: ms(100 + 1000) },
      stagesNs: { input: ms(1 + 2.5), infer: ms(20 + 100), output: ms(2 + 0.5) },
    };
    // 400 requests answered, 500 dispatched from the queue (100 of them failed afterwards).
    expect(serviceStages(before, after)).toEqual({ request_ms: 10, queue_ms: 2, batch_input_ms: 0.1, batch_infer_ms: 4, batch_output_ms: 0.02 });
  });

  it('is undefined when nothing ran between the readings or a reading lacks the times', () => {
    expect(serviceStages(before, before)).toBeUndefined();
    expect(serviceStages({ rows: 0, batches: 0 }, before)).toBeUndefined();
  });
});

describe('ModelStatisticsReader', () => {
  // A server that answers ModelStatistics as a general-model service with two loaded versions does.
  let server: RunningServer;
  const stat = (count: number, nsEach: number) => ({ count, ns: count * nsEach });
  const version = (v: string, requests: number, batches: number) => ({
    name: 'general',
    version: v,
    lastInference: 0,
    inferenceCount: requests,
    executionCount: batches,
    inferenceStats: {
      success: stat(requests, ms(3)),
      fail: stat(0, 0),
      queue: stat(requests + 2, ms(1)),
      computeInput: stat(batches, ms(0.1)),
      computeInfer: stat(batches, ms(2)),
      computeOutput: stat(batches, ms(0.05)),
      cacheHit: stat(0, 0),
      cacheMiss: stat(0, 0),
    },
    batchStats: [],
  });
  let asked: inference.ModelStatisticsRequest | undefined;

  beforeAll(async () => {
    const s = newServer();
    const modelStatistics: grpc.handleUnaryCall<inference.ModelStatisticsRequest, inference.ModelStatisticsResponse> = (call, callback) => {
      asked = call.request;
      callback(null, { modelStats: [version('1', 40, 5), version('2', 60, 5)] });
    };
    s.addService(inference.GRPCInferenceServiceService, { modelStatistics } as unknown as grpc.UntypedServiceImplementation);
    server = await bindServer(s);
  });
  afterAll(async () => {
    await server.close();
  });

  it('sums rows, batches and stage times over the loaded versions', async () => {
    const reader = new ModelStatisticsReader(server.address, 'general');
    try {
      const counters = await reader.counters();
      expect(asked).toMatchObject({ name: 'general', version: '' });
      expect(counters).toEqual({
        rows: 100,
        batches: 10,
        requests: { count: 100, successNs: ms(300), queued: 104, queueNs: ms(104) },
        stagesNs: { input: ms(1), infer: ms(20), output: ms(0.5) },
      });
      expect(serviceStages({ rows: 0, batches: 0, requests: { count: 0, successNs: 0, queued: 0, queueNs: 0 }, stagesNs: { input: 0, infer: 0, output: 0 } }, counters)).toEqual({
        request_ms: 3,
        queue_ms: 1,
        batch_input_ms: 0.1,
        batch_infer_ms: 2,
        batch_output_ms: 0.05,
      });
    } finally {
      reader.close();
    }
  });
});
