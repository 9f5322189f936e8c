import { describe, expect, it } from 'vitest';
import { profileCheckpoints, profileGoal, type ProfileCheckpoint } from './metrics.js';
import type { SimulatedUser } from './profiles.js';
import type { StrategyMeasure, UserCheckpoint, UserRun } from './prequential.js';

const m = (wrong: number, measured: number, fallbacks: Record<string, number> = {}): StrategyMeasure => ({ wrong, measured, rejected: 0, fallbacks, applied: { stacking: measured } });

function run(id: string, checkpoints: UserCheckpoint[]): UserRun {
  return { user: { id } as SimulatedUser, checkpoints, streamMails: 0, feedback: 0, mistakes: 0, rejected: 0, settleMs: 0, elapsedMs: 0 };
}

function cp(feedback: number, g: StrategyMeasure, p: StrategyMeasure, f: StrategyMeasure, streamMails = 0): UserCheckpoint {
  return { feedback, reached: true, streamMails, mistakes: 1, measures: { general: g, personal: p, fused: f } };
}

describe('profileCheckpoints', () => {
  it('pools counts over users, so every held-out mail weighs the same', () => {
    const runs = [
      run('a', [cp(0, m(10, 100), m(10, 100), m(10, 100)), cp(10, m(10, 100), m(6, 100, { no_personal_model: 2 }), m(4, 100), 120)]),
      run('b', [cp(0, m(1, 300), m(1, 300), m(1, 300)), cp(10, m(1, 300), m(5, 300), m(2, 300), 80)]),
    ];
    const [c0, c10] = profileCheckpoints(runs, [10]);
    expect(c0!.error_general).toBeCloseTo(11 / 400, 12);
    expect(c10).toMatchObject({ feedback: 10, users: 2, users_reached: 2, held_out: 400, wrong_general: 11, wrong_personal: 11, wrong_fused: 6, stream_mails: 200 });
    expect(c10!.error_fused).toBeCloseTo(6 / 400, 12);
    expect(c10!.fallbacks_personal).toEqual({ no_personal_model: 2 });
    expect(c10!.applied_fused).toEqual({ stacking: 400 });
  });

  it('counts only users who reached a checkpoint, and has no error without any', () => {
    const runs = [
      run('a', [cp(0, m(1, 10), m(1, 10), m(1, 10)), { feedback: 50, reached: false, streamMails: 9, mistakes: 0, measures: {} }]),
      run('b', [cp(0, m(1, 10), m(1, 10), m(1, 10)), { feedback: 50, reached: false, streamMails: 9, mistakes: 0, measures: {} }]),
    ];
    const [, c50] = profileCheckpoints(runs, [50]);
    expect(c50).toMatchObject({ users: 2, users_reached: 0, held_out: 0, error_general: null, error_fused: null });
  });
});

function checkpoint(feedback: number, general: number, fused: number, reached = 2): ProfileCheckpoint {
  return {
    feedback,
    users: 2,
    users_reached: reached,
    held_out: 1000,
    error_general: general,
    error_personal: fused,
    error_fused: fused,
    wrong_general: 0,
    wrong_personal: 0,
    wrong_fused: 0,
    rejected: 0,
    stream_mails: 0,
    stream_mistakes: 0,
    fallbacks_personal: {},
    fallbacks_fused: {},
    applied_fused: {},
  };
}

describe('profileGoal', () => {
  it('divergent: fused after 50 feedback events at most half of general', () => {
    expect(profileGoal('divergent', [checkpoint(0, 0.08, 0.08), checkpoint(50, 0.08, 0.04)]).met).toBe(true);
    expect(profileGoal('divergent', [checkpoint(50, 0.08, 0.041)]).met).toBe(false);
    const notReached = profileGoal('divergent', [checkpoint(50, 0.08, 0.01, 1)]);
    expect(notReached.met).toBeNull();
    expect(notReached.detail).toBe('checkpoint 50 not reached by every user');
  });

  it('neutral: fused at most general + 0.5 points at every checkpoint after feedback', () => {
    const ok = profileGoal('neutral', [checkpoint(0, 0.01, 0.02), checkpoint(10, 0.01, 0.015), checkpoint(50, 0.01, 0.005), checkpoint(200, 0.01, 0.01)]);
    expect(ok.met).toBe(true);
    const bad = profileGoal('neutral', [checkpoint(10, 0.01, 0.01), checkpoint(50, 0.01, 0.0151)]);
    expect(bad.met).toBe(false);
    expect(bad.detail).toBe('@10: fused 1.00% vs general 1.00%; @50: fused 1.51% vs general 1.00% FAIL');
    expect(profileGoal('neutral', [checkpoint(10, 0.01, 0.01), checkpoint(200, 0.01, 0.01, 1)]).met).toBeNull();
  });
});
