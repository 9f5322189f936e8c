import { describe, expect, it } from 'vitest';
import { durationFromMs, durationToMs } from './duration.js';

describe('durationFromMs', () => {
  it('splits milliseconds into seconds and nanos', () => {
    expect(durationFromMs(1234.5678)).toEqual({ seconds: 1, nanos: 234_567_800 });
  });

  it('encodes zero as zero (not -0)', () => {
    const d = durationFromMs(-0);
    expect(Object.is(d.seconds, 0)).toBe(true);
    expect(Object.is(d.nanos, 0)).toBe(true);
  });

  it('keeps seconds and nanos of the same sign for negative values', () => {
    expect(durationFromMs(-1500)).toEqual({ seconds: -1, nanos: -500_000_000 });
  });

  it('rejects non-finite values', () => {
    expect(() => durationFromMs(Number.NaN)).toThrow(RangeError);
    expect(() => durationFromMs(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('round-trips through durationToMs', () => {
    for (const ms of [0, 0.001, 1, 999.999, 60_000, 3_600_000.25]) {
      expect(durationToMs(durationFromMs(ms))).toBeCloseTo(ms, 6);
    }
  });
});
