import { describe, expect, it } from 'vitest';
import { privacyGoalChecks } from '../report/privacy-record.js';
import { privacySettings, sliceOrder } from './privacy.js';

describe('privacy suite', () => {
  it('alternates the stacks so each leads half of the pairs', () => {
    expect(sliceOrder(8)).toEqual(['on', 'off', 'off', 'on', 'on', 'off', 'off', 'on']);
    const counts = sliceOrder(8).reduce((c, s) => ({ ...c, [s]: (c[s] ?? 0) + 1 }), {} as Record<string, number>);
    expect(counts).toEqual({ on: 4, off: 4 });
  });

  it('applies --quick and the defaults', () => {
    expect(privacySettings({ quick: false, users: undefined, erasures: undefined, durationS: undefined })).toEqual({ users: 200, erasures: 100, overheadMs: 40_000 });
    expect(privacySettings({ quick: true, users: 10, erasures: undefined, durationS: 2 })).toEqual({ users: 10, erasures: 20, overheadMs: 2_000 });
  });

  it('checks both goals, and reports a missing figure as unknown rather than met', () => {
    expect(privacyGoalChecks(4_999, 0.2).map((g) => g.met)).toEqual([true, true]);
    expect(privacyGoalChecks(5_001, 0.21).map((g) => g.met)).toEqual([false, false]);
    expect(privacyGoalChecks(Number.NaN, Number.NaN).map((g) => g.met)).toEqual([null, null]);
  });
});
