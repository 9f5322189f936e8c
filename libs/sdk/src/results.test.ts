import { describe, expect, it } from 'vitest';
import { v1 } from '@aimass/proto';
import { STRATEGIES, strategyCode, strategyName, toPredictionResult, toProvenance } from './results.js';

describe('strategies', () => {
  it('round-trips every name through its protocol code, and leaves unset as the tenant default', () => {
    for (const s of STRATEGIES) expect(strategyName(strategyCode(s))).toBe(s);
    expect(strategyCode(undefined)).toBe(v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED);
    expect(strategyCode(v1.FusionStrategy.FUSION_STRATEGY_OVERRIDE)).toBe(v1.FusionStrategy.FUSION_STRATEGY_OVERRIDE);
    expect(() => strategyCode('bayes' as 'general')).toThrow(/unknown strategy "bayes"/);
  });

  it('names values it does not know "unspecified" instead of failing', () => {
    expect(strategyName(v1.FusionStrategy.UNRECOGNIZED)).toBe('unspecified');
    const p = toProvenance({
      models: [{ model: undefined, role: v1.ModelRole.UNRECOGNIZED, weight: 0 }],
      requestedStrategy: 99 as v1.FusionStrategy,
      appliedStrategy: v1.FusionStrategy.FUSION_STRATEGY_INTERPOLATE,
      fallbacks: [{ reason: 42 as v1.FallbackReason, role: v1.ModelRole.MODEL_ROLE_PERSONAL, detail: '' }],
      timings: [{ stage: 77 as v1.Stage, duration: { seconds: 0, nanos: 1 } }],
    });
    expect(p.requestedStrategy).toBe('unspecified');
    expect(p.appliedStrategy).toBe('interpolate');
    expect(p.models[0]).toEqual({ name: '', version: '', role: 'unspecified', weight: 0 });
    expect(p.fallbacks[0]?.reason).toBe('unspecified');
    expect(p.timingsMs).toEqual({});
  });
});

describe('toPredictionResult', () => {
  it('keeps top-k order in the list and gives components and embedding when sent', () => {
    const r = toPredictionResult({
      predictionId: 'p1',
      label: 'spam',
      probabilities: [{ label: 'spam', index: 1, probability: 0.75 }],
      provenance: undefined,
      embedding: [0.5, -0.25],
      general: { model: { name: 'general', version: '2' }, label: 'ham', probabilities: [{ label: 'ham', index: 0, probability: 0.6 }] },
      personal: undefined,
    });
    expect(r.probabilities).toEqual({ spam: 0.75 });
    expect(r.probabilityList).toEqual([{ label: 'spam', index: 1, probability: 0.75 }]);
    expect(r.embedding).toEqual([0.5, -0.25]);
    expect(r.general).toEqual({ model: { name: 'general', version: '2' }, label: 'ham', probabilities: { ham: 0.6 } });
    expect(r.personal).toBeUndefined();
    expect(r.provenance.appliedStrategy).toBe('unspecified');
  });
});
