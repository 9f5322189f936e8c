import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@aimass/testing';
import { startEchoServer } from '../src/contenders/echo-server.js';
import type { RunningServer } from '../src/contenders/grpc-host.js';
import { LoadGenerator } from '../src/load/load-generator.js';
import { MODEL_INFER_METHOD, type LoadSpec } from '../src/load/protocol.js';
import { encodeInferRequest } from '../src/load/requests.js';

const OUTPUTS = [
  { name: 'probs', datatype: 'FP32', rowShape: [2] },
  { name: 'embedding', datatype: 'FP32', rowShape: [64] },
];

let echo: RunningServer;
let load: LoadGenerator;

function spec(overrides: Partial<LoadSpec>): LoadSpec {
  const payloads = [1, 2, 3].map((seed) => encodeInferRequest('default', [{ name: 'ids', datatype: 'INT64', shape: [1, 16], raw: new Uint8Array(BigInt64Array.from({ length: 16 }, (_, i) => BigInt(seed + i)).buffer) }]));
  return {
    address: echo.address,
    method: MODEL_INFER_METHOD,
    payloads,
    rowsPerRequest: 1,
    expectedOutputs: OUTPUTS.length,
    connections: 2,
    deadlineMs: 5000,
    warmupMs: 150,
    durationMs: 500,
    mode: { kind: 'closed', concurrency: 8 },
    ...overrides,
  };
}

beforeAll(async () => {
  [echo, load] = await Promise.all([startEchoServer({ outputs: OUTPUTS }), LoadGenerator.start()]);
});

afterAll(async () => {
  await load?.close();
  await echo?.close();
});

describe('load generator (separate process) against the echo server', () => {
  it('runs in another process', () => {
    expect(load.pid).toBeGreaterThan(0);
    expect(load.pid).not.toBe(process.pid);
  });

  it('closed loop: counts rows and orders the percentiles', async () => {
    const result = await load.run(spec({}));
    expect(result.errorCount).toBe(0);
    expect(result.rows).toBeGreaterThan(0);
    expect(result.rowsPerS).toBeCloseTo(result.rows / 0.5, 6);
    expect(result.latencyMs.p50).toBeGreaterThan(0);
    expect(result.latencyMs.p50).toBeLessThanOrEqual(result.latencyMs.p99);
    expect(result.latencyMs.p99).toBeLessThanOrEqual(result.latencyMs.max);
    expect(result.clientCpuCores).toBeGreaterThan(0);
  });

  it('open loop: sends at the requested rate', async () => {
    const result = await load.run(spec({ mode: { kind: 'open', ratePerS: 200, maxOutstanding: 1000 } }));
    expect(result.errorCount).toBe(0);
    // 200/s for 0.5 s is 100 requests; timer granularity allows one either way.
    expect(result.requests).toBeGreaterThanOrEqual(99);
    expect(result.requests).toBeLessThanOrEqual(101);
    expect(result.latencyMs.p50).toBeLessThanOrEqual(result.latencyMs.p99);
  });

  it('counts answers without the expected outputs as failures', async () => {
    const result = await load.run(spec({ expectedOutputs: 3, durationMs: 200 }));
    expect(result.requests).toBe(0);
    expect(result.errors.BAD_RESPONSE).toBeGreaterThan(0);
  });

  it('counts an unreachable server as UNAVAILABLE, without hanging', async () => {
    const port = await freePort();
    const result = await load.run(spec({ address: `127.0.0.1:${port}`, warmupMs: 0, durationMs: 200, deadlineMs: 1000, mode: { kind: 'closed', concurrency: 2 } }));
    expect(result.requests).toBe(0);
    expect(result.errors.UNAVAILABLE).toBeGreaterThan(0);
  });
});
