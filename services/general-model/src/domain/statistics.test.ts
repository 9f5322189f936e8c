import { describe, expect, it } from 'vitest';
import { ModelStatisticsRecorder } from './statistics.js';

describe('ModelStatisticsRecorder', () => {
  it('counts rows of successful requests only, failures apart, and keeps durations in nanoseconds', () => {
    let now = 1_000;
    const s = new ModelStatisticsRecorder(() => now);
    expect(s.snapshot()).toMatchObject({ lastInferenceMs: 0, inferenceCount: 0, executionCount: 0, success: { count: 0, ns: 0 } });
    s.request('success', 3, 1.5);
    now = 2_000;
    s.request('fail', 4, 0.25);
    s.queued(0.75);
    s.queued(0.125);
    const snap = s.snapshot();
    expect(snap.lastInferenceMs).toBe(2_000);
    expect(snap.inferenceCount).toBe(3);
    expect(snap.success).toEqual({ count: 1, ns: 1_500_000 });
    expect(snap.fail).toEqual({ count: 1, ns: 250_000 });
    expect(snap.queue).toEqual({ count: 2, ns: 875_000 });
  });

  it('keeps executions per batch size, ascending, and their sum in the totals', () => {
    const s = new ModelStatisticsRecorder();
    s.execution(4, { inputMs: 0.01, inferMs: 2, outputMs: 0.02 });
    s.execution(1, { inputMs: 0.001, inferMs: 0.5, outputMs: 0.002 });
    s.execution(4, { inputMs: 0.01, inferMs: 3, outputMs: 0.02 });
    const snap = s.snapshot();
    expect(snap.executionCount).toBe(3);
    expect(snap.computeInfer).toEqual({ count: 3, ns: 5_500_000 });
    expect(snap.batches.map((b) => [b.batchSize, b.computeInfer.count, b.computeInfer.ns])).toEqual([
      [1, 1, 500_000],
      [4, 2, 5_000_000],
    ]);
    // A snapshot is a copy: recording more does not change it.
    s.execution(4, { inputMs: 0, inferMs: 1, outputMs: 0 });
    expect(snap.batches[1]!.computeInfer.count).toBe(2);
  });
});
