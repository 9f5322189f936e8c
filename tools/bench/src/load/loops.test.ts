import { describe, expect, it } from 'vitest';
import { runLoad, type Sender } from './loops.js';

// The loops' bookkeeping with a sender that answers after a fixed delay (the gRPC path is
// tested against real servers in test/load-generator.test.ts).
const after = (ms: number, error: string | null = null): Sender => (_payload, _deadline, done) => setTimeout(() => done(error), ms);
const timing = { payloads: [new Uint8Array(1)], rowsPerRequest: 2, deadlineMs: 1000, warmupMs: 50, durationMs: 400 };

describe('load loops', () => {
  it('closed loop: throughput follows concurrency / latency, rows count per request', async () => {
    const r = await runLoad({ ...timing, mode: { kind: 'closed', concurrency: 4 } }, [after(10)]);
    // 4 clients at ~10 ms each: at most 400 requests/s; timers only ever run late.
    expect(r.requestsPerS).toBeGreaterThan(150);
    expect(r.requestsPerS).toBeLessThanOrEqual(410);
    expect(r.rowsPerS).toBeCloseTo(2 * r.requestsPerS, 6);
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(9);
    expect(r.errorCount).toBe(0);
  });

  it('open loop: measures every request due in the window, from when it was due', async () => {
    const r = await runLoad({ ...timing, mode: { kind: 'open', ratePerS: 100, maxOutstanding: 100 } }, [after(5)]);
    expect(r.requests).toBeGreaterThanOrEqual(39);
    expect(r.requests).toBeLessThanOrEqual(41);
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(4.5);
  });

  it('open loop: refuses beyond maxOutstanding and counts it', async () => {
    const r = await runLoad({ ...timing, mode: { kind: 'open', ratePerS: 200, maxOutstanding: 2 } }, [after(100)]);
    expect(r.errors.CLIENT_OVERLOAD).toBeGreaterThan(0);
    expect(r.requests + r.errorCount).toBeGreaterThanOrEqual(79);
  });

  it('counts failures by name, not as throughput', async () => {
    const r = await runLoad({ ...timing, mode: { kind: 'closed', concurrency: 2 } }, [after(5, 'UNAVAILABLE')]);
    expect(r.requests).toBe(0);
    expect(r.rowsPerS).toBe(0);
    expect(r.errors.UNAVAILABLE).toBe(r.errorCount);
    expect(r.errorCount).toBeGreaterThan(0);
  });

  it('tallies what answers said, tells the window edges, and builds each request', async () => {
    const phases: string[] = [];
    const sent: number[] = [];
    const sender: Sender = (payload, _deadline, done) => {
      sent.push(payload[0] as number);
      setTimeout(() => done(null, { outcome: payload[0] === 2 ? 'applied:STACKING' : 'fallback:NO_PERSONAL_MODEL', stages: [['TOTAL', payload[0] as number]] }), 5);
    };
    const r = await runLoad({ ...timing, payloads: [Uint8Array.of(1)], mode: { kind: 'closed', concurrency: 2 } }, [sender], {
      request: (p) => Uint8Array.of((p[0] as number) + (sent.length % 2)),
      onWindow: (phase) => phases.push(phase),
    });
    expect(phases).toEqual(['start', 'end']);
    expect(new Set(sent)).toEqual(new Set([1, 2]));
    const tallied = Object.values(r.outcomes).reduce((a, b) => a + b, 0);
    expect(tallied).toBe(r.requests);
    expect(r.outcomes['applied:STACKING']).toBeGreaterThan(0);
    // Stage times average what the answers reported: here 1 or 2 ms each.
    expect(r.stageMeansMs.TOTAL).toBeGreaterThan(1);
    expect(r.stageMeansMs.TOTAL).toBeLessThan(2);
  });
});
