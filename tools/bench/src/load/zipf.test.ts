import { describe, expect, it } from 'vitest';
import { hashUniform, seededUniform, ZipfDistribution } from './zipf.js';

describe('ZipfDistribution', () => {
  it('has pmf proportional to k^-s, summing to 1', () => {
    const z = new ZipfDistribution(1000, 1);
    let sum = 0;
    for (let k = 1; k <= 1000; k++) sum += z.pmf(k);
    expect(sum).toBeCloseTo(1, 10);
    expect(z.pmf(1) / z.pmf(10)).toBeCloseTo(10, 10);
    expect(z.pmf(0)).toBe(0);
    expect(z.pmf(1001)).toBe(0);
    expect(z.cumulative(1000)).toBe(1);
  });

  it('inverts its cumulative distribution', () => {
    const z = new ZipfDistribution(50, 1.5);
    expect(z.quantile(0)).toBe(1);
    expect(z.quantile(z.cumulative(1) - 1e-12)).toBe(1);
    expect(z.quantile(z.cumulative(1))).toBe(2);
    expect(z.quantile(z.cumulative(7) + 1e-12)).toBe(8);
    expect(z.quantile(0.999999999)).toBeLessThanOrEqual(50);
  });

  it('draws ranks with the frequencies of the law', () => {
    const z = new ZipfDistribution(1_000_000, 1);
    const random = seededUniform(7);
    const n = 200_000;
    const counts = new Map<number, number>();
    let top100 = 0;
    for (let i = 0; i < n; i++) {
      const k = z.sample(random);
      counts.set(k, (counts.get(k) ?? 0) + 1);
      if (k <= 100) top100++;
    }
    // H(1e6) ≈ 14.39: rank 1 has ~6.95% of the traffic, the top 100 ~36.0%.
    expect((counts.get(1) ?? 0) / n).toBeCloseTo(z.pmf(1), 2);
    expect((counts.get(2) ?? 0) / n).toBeCloseTo(z.pmf(2), 2);
    expect(top100 / n).toBeCloseTo(z.cumulative(100), 2);
    expect(z.cumulative(100)).toBeCloseTo(0.36, 2);
  });

  it('is uniform at s = 0 and refuses bad parameters', () => {
    const u = new ZipfDistribution(4, 0);
    expect([1, 2, 3, 4].map((k) => u.pmf(k))).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(u.mean()).toBeCloseTo(2.5, 10);
    expect(() => new ZipfDistribution(0, 1)).toThrow(/at least one rank/);
    expect(() => new ZipfDistribution(10, -1)).toThrow(/exponent/);
  });
});

describe('seeded and hashed uniforms', () => {
  it('repeats a seeded sequence and stays in [0, 1)', () => {
    const a = seededUniform(42);
    const b = seededUniform(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it('hashes (key, salt) to a fixed, roughly uniform number', () => {
    expect(hashUniform(123, 9)).toBe(hashUniform(123, 9));
    expect(hashUniform(123, 9)).not.toBe(hashUniform(123, 10));
    const buckets = new Array<number>(10).fill(0);
    let min = 1;
    let max = 0;
    for (let key = 1; key <= 100_000; key++) {
      const u = hashUniform(key, 0x4d0d);
      min = Math.min(min, u);
      max = Math.max(max, u);
      buckets[Math.floor(u * 10)]!++;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(500);
  });
});
