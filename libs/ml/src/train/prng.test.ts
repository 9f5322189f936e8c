import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';

describe('Prng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const seqA = Array.from({ length: 100 }, () => a.nextUint32());
    expect(Array.from({ length: 100 }, () => b.nextUint32())).toEqual(seqA);
    expect(Array.from({ length: 100 }, () => c.nextUint32())).not.toEqual(seqA);
  });

  it('draws floats in [0, 1) with a plausible mean, and shuffles into a permutation', () => {
    const rng = new Prng(1);
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const x = rng.nextFloat();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      sum += x;
    }
    expect(sum / 10000).toBeCloseTo(0.5, 1);
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = new Prng(7).shuffle([...items]);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items);
  });
});
