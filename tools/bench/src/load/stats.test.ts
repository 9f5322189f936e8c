import { describe, expect, it } from 'vitest';
import { percentile, SampleBuffer, summarizeLatencies } from './stats.js';

describe('latency statistics', () => {
  it('takes nearest-rank percentiles, so each is a latency that happened', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99);
    expect(percentile(sorted, 1)).toBe(100);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNaN();
  });

  it('summarizes unsorted samples', () => {
    const s = summarizeLatencies([5, 1, 3, 2, 4]);
    expect(s).toMatchObject({ count: 5, mean: 3, p50: 3, p99: 5, max: 5 });
  });

  it('grows a sample buffer past its initial capacity', () => {
    const b = new SampleBuffer();
    for (let i = 0; i < 5000; i++) b.push(i);
    expect(b.length).toBe(5000);
    expect(b.values()[4999]).toBe(4999);
  });
});
