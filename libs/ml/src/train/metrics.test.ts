import { describe, expect, it } from 'vitest';
import { binaryMetrics, rocAuc } from './metrics.js';

describe('rocAuc', () => {
  it('is 1 for a perfect ranking, 0 for a reversed one and 0.5 for all ties', () => {
    const perfect = [
      { label: 0 as const, score: 0.1 },
      { label: 0 as const, score: 0.2 },
      { label: 1 as const, score: 0.8 },
    ];
    expect(rocAuc(perfect)).toBe(1);
    expect(rocAuc(perfect.map((x) => ({ ...x, score: 1 - x.score })))).toBe(0);
    expect(rocAuc(perfect.map((x) => ({ ...x, score: 0.5 })))).toBe(0.5);
    expect(rocAuc([{ label: 1, score: 0.3 }])).toBeNaN();
  });

  it('counts pairs: one of four positive-negative pairs misordered gives 0.75', () => {
    const items = [
      { label: 0 as const, score: 0.1 },
      { label: 1 as const, score: 0.2 },
      { label: 0 as const, score: 0.3 },
      { label: 1 as const, score: 0.9 },
    ];
    expect(rocAuc(items)).toBe(0.75);
  });
});

describe('binaryMetrics', () => {
  it('reports accuracy, confusion, precision/recall and errors per group', () => {
    const m = binaryMetrics([
      { label: 1, score: 0.9, group: 'spam-1' },
      { label: 1, score: 0.4, group: 'spam-1' },
      { label: 0, score: 0.2, group: 'ham' },
      { label: 0, score: 0.6, group: 'ham' },
      { label: 0, score: 0.1, group: 'ham' },
    ]);
    expect(m.count).toBe(5);
    expect(m.accuracy).toBeCloseTo(0.6);
    expect(m.confusion).toEqual({ truePositive: 1, falsePositive: 1, trueNegative: 2, falseNegative: 1 });
    expect(m.precision).toBe(0.5);
    expect(m.recall).toBe(0.5);
    expect(m.byGroup).toEqual({
      ham: { count: 3, errors: 1, accuracy: 2 / 3 },
      'spam-1': { count: 2, errors: 1, accuracy: 0.5 },
    });
    expect(m.logLoss).toBeGreaterThan(0);
  });
});
