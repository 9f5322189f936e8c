import { describe, expect, it } from 'vitest';
import { advanceWatermark, alreadyApplied, unseenExamples } from './watermark.js';

const at = (...sequences: number[]) => sequences.map((sourceSequence, i) => ({ sourceSequence, id: i }));

describe('feedback sequence watermark', () => {
  it('skips examples at or below the watermark, never those without a sequence', () => {
    expect(alreadyApplied(5, 5)).toBe(true);
    expect(alreadyApplied(4, 5)).toBe(true);
    expect(alreadyApplied(6, 5)).toBe(false);
    expect(alreadyApplied(0, 5)).toBe(false);
    expect(alreadyApplied(1, 0)).toBe(false);
  });

  it('keeps the order of what is applied and counts what is skipped', () => {
    expect(unseenExamples(at(3, 0, 7, 5, 6, 0), 5)).toEqual({ apply: at(3, 0, 7, 5, 6, 0).filter((e) => [1, 2, 4, 5].includes(e.id)), skipped: 2 });
    expect(unseenExamples(at(1, 2, 3), 3)).toEqual({ apply: [], skipped: 3 });
    expect(unseenExamples(at(1, 2, 3), 0)).toEqual({ apply: at(1, 2, 3), skipped: 0 });
  });

  it('advances to the highest applied sequence and never goes back', () => {
    expect(advanceWatermark(5, at(6, 9, 7))).toBe(9);
    expect(advanceWatermark(5, at(0, 0))).toBe(5);
    expect(advanceWatermark(10, at(3))).toBe(10);
    expect(advanceWatermark(0, [])).toBe(0);
  });
});
