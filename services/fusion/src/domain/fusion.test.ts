import { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { fuse, overrideApplies, shrinkageWeight, type GeneralComponent, type PersonalOutcome } from './fusion.js';
import { softmax } from './logits.js';
import type { FusionPolicy } from './strategy.js';

const S = v1.FusionStrategy;
const R = v1.FallbackReason;

const policy: FusionPolicy = {
  strategy: S.FUSION_STRATEGY_STACKING,
  interpolation: { k: 10, maxWeight: 0.8 },
  override: { threshold: 0.9, minExamples: 5 },
};

const generalModel = { name: 'general', version: '3' };
const personalModel = { name: 'personal-ftrl', version: '7' };

/** General: ham with p(spam) = sigmoid(-1) ≈ 0.27. */
const general: GeneralComponent = { model: generalModel, labels: ['ham', 'spam'], logits: [0, -1], probabilities: softmax([0, -1]) };

function scored(overrides: Partial<Extract<PersonalOutcome, { kind: 'scored' }>> = {}): PersonalOutcome {
  const logits = overrides.logits ?? [0, 3];
  return { kind: 'scored', model: personalModel, logits, probabilities: softmax(logits), correction: [0, 2.5], exampleCount: 10, ...overrides };
}

describe('shrinkage weight', () => {
  it('is 0 without evidence, half of the maximum at n = k, and approaches the maximum', () => {
    expect(shrinkageWeight(0, 10, 0.8)).toBe(0);
    expect(shrinkageWeight(10, 10, 0.8)).toBeCloseTo(0.4, 12);
    expect(shrinkageWeight(30, 10, 0.8)).toBeCloseTo(0.6, 12);
    expect(shrinkageWeight(1e9, 10, 0.8)).toBeLessThan(0.8);
    expect(shrinkageWeight(1e9, 10, 0.8)).toBeCloseTo(0.8, 6);
    expect(shrinkageWeight(-3, 10, 0.8)).toBe(0);
  });

  it('grows monotonically with evidence', () => {
    let last = -1;
    for (let n = 0; n <= 200; n += 5) {
      const w = shrinkageWeight(n, 10, 0.8);
      expect(w).toBeGreaterThan(last);
      last = w;
    }
  });
});

describe('override rule', () => {
  it('needs both the confidence threshold and the minimum evidence', () => {
    expect(overrideApplies([0.05, 0.95], 5, 0.9, 5)).toBe(true);
    expect(overrideApplies([0.9, 0.1], 5, 0.9, 5)).toBe(true); // at the threshold, either class
    expect(overrideApplies([0.15, 0.85], 100, 0.9, 5)).toBe(false);
    expect(overrideApplies([0.01, 0.99], 4, 0.9, 5)).toBe(false);
    expect(overrideApplies([], 100, 0.9, 5)).toBe(false);
  });
});

describe('fuse', () => {
  it('GENERAL_ONLY gives the general answer and does not name a personal model', () => {
    const out = fuse(general, { kind: 'not_consulted' }, S.FUSION_STRATEGY_GENERAL_ONLY, policy);
    expect(out.label).toBe('ham');
    expect(out.probabilities[1]).toBeCloseTo(general.probabilities[1]!, 12);
    expect(out).toMatchObject({ requested: S.FUSION_STRATEGY_GENERAL_ONLY, applied: S.FUSION_STRATEGY_GENERAL_ONLY, weights: { general: 1, personal: 0 }, fallbacks: [] });
    expect(out.personalModel).toBeUndefined();
  });

  it('PERSONAL_ONLY gives the standalone head', () => {
    const out = fuse(general, scored(), S.FUSION_STRATEGY_PERSONAL_ONLY, policy);
    expect(out.label).toBe('spam');
    expect(out.logits).toEqual([0, 3]);
    expect(out.probabilities[1]).toBeCloseTo(1 / (1 + Math.exp(-3)), 12);
    expect(out).toMatchObject({ applied: S.FUSION_STRATEGY_PERSONAL_ONLY, weights: { general: 0, personal: 1 }, personalModel: personalModel });
    expect(out.personal?.labelIndex).toBe(1);
  });

  it('INTERPOLATE mixes logits with λ = λmax·n/(n+k)', () => {
    const out = fuse(general, scored({ exampleCount: 10 }), S.FUSION_STRATEGY_INTERPOLATE, policy);
    const lambda = 0.4; // 0.8 · 10 / (10 + 10)
    expect(out.weights.personal).toBeCloseTo(lambda, 12);
    expect(out.weights.general).toBeCloseTo(1 - lambda, 12);
    expect(out.logits[1]).toBeCloseTo((1 - lambda) * -1 + lambda * 3, 12); // 0.6
    expect(out.label).toBe('spam');
    expect(out.applied).toBe(S.FUSION_STRATEGY_INTERPOLATE);
  });

  it('INTERPOLATE with no evidence is exactly the general answer', () => {
    const out = fuse(general, scored({ exampleCount: 0 }), S.FUSION_STRATEGY_INTERPOLATE, policy);
    expect(out.logits).toEqual([0, -1]);
    expect(out.weights).toEqual({ general: 1, personal: 0 });
  });

  it('STACKING adds the correction head to the general logits', () => {
    const out = fuse(general, scored({ correction: [0, 2.5] }), S.FUSION_STRATEGY_STACKING, policy);
    expect(out.logits[1]).toBeCloseTo(1.5, 12);
    expect(out.label).toBe('spam');
    expect(out).toMatchObject({ applied: S.FUSION_STRATEGY_STACKING, weights: { general: 1, personal: 1 } });
    // A zero correction (a regularised model with little data) keeps the general answer.
    expect(fuse(general, scored({ correction: [0, 0] }), S.FUSION_STRATEGY_STACKING, policy).logits).toEqual([0, -1]);
  });

  it('STACKING without a correction head falls back with STRATEGY_UNAVAILABLE', () => {
    const out = fuse(general, scored({ correction: [] }), S.FUSION_STRATEGY_STACKING, policy);
    expect(out.applied).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(out.fallbacks).toEqual([expect.objectContaining({ reason: R.FALLBACK_REASON_STRATEGY_UNAVAILABLE, role: v1.ModelRole.MODEL_ROLE_PERSONAL })]);
    expect(out.label).toBe('ham');
  });

  it('OVERRIDE lets a confident, experienced personal model win and keeps the general answer otherwise', () => {
    const wins = fuse(general, scored({ logits: [0, 4], exampleCount: 5 }), S.FUSION_STRATEGY_OVERRIDE, policy);
    expect(wins).toMatchObject({ label: 'spam', applied: S.FUSION_STRATEGY_OVERRIDE, weights: { general: 0, personal: 1 } });
    const unsure = fuse(general, scored({ logits: [0, 1], exampleCount: 50 }), S.FUSION_STRATEGY_OVERRIDE, policy);
    expect(unsure).toMatchObject({ label: 'ham', applied: S.FUSION_STRATEGY_OVERRIDE, weights: { general: 1, personal: 0 } });
    const novice = fuse(general, scored({ logits: [0, 6], exampleCount: 4 }), S.FUSION_STRATEGY_OVERRIDE, policy);
    expect(novice.label).toBe('ham');
  });

  it.each([
    [{ kind: 'no_model' } as PersonalOutcome, R.FALLBACK_REASON_NO_PERSONAL_MODEL, /^the user has no personal model yet: feedback creates one$/],
    [{ kind: 'no_model', cached: true } as PersonalOutcome, R.FALLBACK_REASON_NO_PERSONAL_MODEL, /^the user has no personal model yet: feedback creates one \(cached\)$/],
    [{ kind: 'timeout', detail: 'took too long' } as PersonalOutcome, R.FALLBACK_REASON_PERSONAL_TIMEOUT, /took too long/],
    [{ kind: 'error', detail: 'UNAVAILABLE: down' } as PersonalOutcome, R.FALLBACK_REASON_PERSONAL_ERROR, /UNAVAILABLE/],
    [{ kind: 'circuit_open', detail: 'skipped' } as PersonalOutcome, R.FALLBACK_REASON_CIRCUIT_OPEN, /skipped/],
    [{ kind: 'no_consent', detail: 'the user has not granted personalization consent' } as PersonalOutcome, R.FALLBACK_REASON_NO_CONSENT, /personalization consent/],
    [
      { kind: 'version_mismatch', model: personalModel, paired: { name: 'general', version: '2' } } as PersonalOutcome,
      R.FALLBACK_REASON_GENERAL_VERSION_MISMATCH,
      /paired with general model general:2/,
    ],
  ])('falls back to the general answer and says why (%#)', (personal, reason, detail) => {
    for (const strategy of [S.FUSION_STRATEGY_PERSONAL_ONLY, S.FUSION_STRATEGY_INTERPOLATE, S.FUSION_STRATEGY_STACKING, S.FUSION_STRATEGY_OVERRIDE]) {
      const out = fuse(general, personal, strategy, policy);
      expect(out.requested).toBe(strategy);
      expect(out.applied).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
      expect(out.label).toBe('ham');
      expect(out.weights).toEqual({ general: 1, personal: 0 });
      expect(out.fallbacks).toHaveLength(1);
      expect(out.fallbacks[0]!.reason).toBe(reason);
      expect(out.fallbacks[0]!.role).toBe(v1.ModelRole.MODEL_ROLE_PERSONAL);
      expect(out.fallbacks[0]!.detail).toMatch(detail);
    }
  });

  it('names the mismatched personal model as consulted with weight 0', () => {
    const out = fuse(general, { kind: 'version_mismatch', model: personalModel, paired: generalModel }, S.FUSION_STRATEGY_STACKING, policy);
    expect(out.personalModel).toEqual(personalModel);
  });

  it('treats a personal answer of the wrong shape as a personal error, not a crash', () => {
    const out = fuse(general, scored({ logits: [1, 2, 3], probabilities: [] }), S.FUSION_STRATEGY_PERSONAL_ONLY, policy);
    expect(out.applied).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(out.fallbacks[0]).toMatchObject({ reason: R.FALLBACK_REASON_PERSONAL_ERROR, detail: expect.stringMatching(/3 logits for 2 labels/) });
  });

  it('uses the personal probabilities when its logits are missing', () => {
    const out = fuse(general, scored({ logits: [], probabilities: [0.1, 0.9] }), S.FUSION_STRATEGY_PERSONAL_ONLY, policy);
    expect(out.probabilities[1]).toBeCloseTo(0.9, 6);
  });

  it('handles more than two labels, class 0 as the reference', () => {
    const three: GeneralComponent = { model: generalModel, labels: ['a', 'b', 'c'], logits: [0, 1, 0.5], probabilities: softmax([0, 1, 0.5]) };
    const out = fuse(three, scored({ logits: [0, 0, 2], correction: [0, -1, 1] }), S.FUSION_STRATEGY_STACKING, policy);
    expect(out.logits).toEqual([0, 0, 1.5]);
    expect(out.label).toBe('c');
    expect(out.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});
