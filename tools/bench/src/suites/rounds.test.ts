import { describe, expect, it } from 'vitest';
import { lowerMedianBy } from './common.js';
import { medianGeneralRound } from './general.js';

describe('lowerMedianBy', () => {
  it('takes the middle item, the lower middle of an even count, the earlier of ties', () => {
    expect(lowerMedianBy([3, 1, 2], (x) => x)).toBe(2);
    expect(lowerMedianBy([4, 1, 3, 2], (x) => x)).toBe(2);
    const tied = [{ v: 1, id: 'a' }, { v: 1, id: 'b' }, { v: 0, id: 'c' }];
    expect(lowerMedianBy(tied, (x) => x.v).id).toBe('a');
  });

  it('counts a NaN key as the lowest and refuses an empty list', () => {
    expect(lowerMedianBy([Number.NaN, 5, 7], (x) => x)).toBe(5);
    expect(() => lowerMedianBy([], (x: number) => x)).toThrow(/no items/);
  });
});

describe('medianGeneralRound', () => {
  const rows = [
    { limitRowsPerS: 1000, serviceRowsPerS: 600, naiveRowsPerS: 300 },
    { limitRowsPerS: 800, serviceRowsPerS: 640, naiveRowsPerS: 160 },
    { limitRowsPerS: 1200, serviceRowsPerS: 600, naiveRowsPerS: 250 },
  ];

  it('picks the round by the goal ratio: against the limit', () => {
    const { rounds, median } = medianGeneralRound(rows, 'limit');
    expect(rounds.map((r) => r.ratio_vs_limit)).toEqual([0.6, 0.8, 0.5]);
    expect(median).toEqual({ round: 1, limit_rows_per_s: 1000, service_rows_per_s: 600, naive_rows_per_s: 300, ratio_vs_limit: 0.6, ratio_vs_naive: 2 });
  });

  it('picks the round by the goal ratio: against the naive server', () => {
    const { rounds, median } = medianGeneralRound(rows, 'naive');
    expect(rounds.map((r) => r.ratio_vs_naive)).toEqual([2, 4, 2.4]);
    expect(median.round).toBe(3);
  });

  it('gives a round whose limit or naive server answered nothing ratio 0, the lowest, not infinity', () => {
    const { rounds, median } = medianGeneralRound(
      [{ limitRowsPerS: 0, serviceRowsPerS: 500, naiveRowsPerS: Number.NaN }, ...rows.slice(0, 2)],
      'limit',
    );
    expect(rounds[0]).toMatchObject({ ratio_vs_limit: 0, ratio_vs_naive: 0 });
    expect(median.round).toBe(2);
  });
});
