import { describe, expect, it } from 'vitest';
import { medianRound } from './rounds.js';

describe('medianRound', () => {
  it('takes the pair with the median ratio, not the median of each contender', () => {
    const { rounds, median } = medianRound([
      { generalRowsPerS: 1000, fusedRowsPerS: 700 },
      { generalRowsPerS: 1250, fusedRowsPerS: 650 },
      { generalRowsPerS: 800, fusedRowsPerS: 640 },
    ]);
    expect(rounds.map((r) => r.ratio)).toEqual([0.7, 0.52, 0.8]);
    expect(median).toEqual({ round: 1, general_only_rows_per_s: 1000, fused_rows_per_s: 700, ratio: 0.7 });
  });

  it('takes the lower middle of an even count', () => {
    const { median } = medianRound([
      { generalRowsPerS: 1000, fusedRowsPerS: 800 },
      { generalRowsPerS: 1000, fusedRowsPerS: 600 },
    ]);
    expect(median.round).toBe(2);
    expect(median.ratio).toBe(0.6);
  });

  it('gives a pair whose general-only run answered nothing ratio 0, and refuses no pairs', () => {
    expect(medianRound([{ generalRowsPerS: 0, fusedRowsPerS: 500 }]).median.ratio).toBe(0);
    expect(() => medianRound([])).toThrow(RangeError);
    expect(() => medianRound([])).toThrow(/no items/);
  });
});
