import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { needsPersonal, parseStrategyName, requestedStrategy, resolvePolicy, strategyName, type FusionPolicy } from './strategy.js';

const S = v1.FusionStrategy;

const defaults: FusionPolicy = {
  strategy: S.FUSION_STRATEGY_STACKING,
  interpolation: { k: 20, maxWeight: 0.8 },
  override: { threshold: 0.9, minExamples: 10 },
};

describe('strategies', () => {
  it('parses names in the forms configuration uses', () => {
    expect(parseStrategyName('stacking')).toBe(S.FUSION_STRATEGY_STACKING);
    expect(parseStrategyName('PERSONAL_ONLY')).toBe(S.FUSION_STRATEGY_PERSONAL_ONLY);
    expect(parseStrategyName('general-only')).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(parseStrategyName('FUSION_STRATEGY_OVERRIDE')).toBe(S.FUSION_STRATEGY_OVERRIDE);
    expect(parseStrategyName(' interpolate ')).toBe(S.FUSION_STRATEGY_INTERPOLATE);
    expect(parseStrategyName('unspecified')).toBeUndefined();
    expect(parseStrategyName('blend')).toBeUndefined();
    expect(strategyName(S.FUSION_STRATEGY_INTERPOLATE)).toBe('interpolate');
  });

  it("lays a tenant's overrides over the defaults key by key", () => {
    expect(resolvePolicy(defaults, undefined)).toBe(defaults);
    expect(resolvePolicy(defaults, { strategy: S.FUSION_STRATEGY_OVERRIDE, override: { threshold: 0.95 } })).toEqual({
      strategy: S.FUSION_STRATEGY_OVERRIDE,
      interpolation: { k: 20, maxWeight: 0.8 },
      override: { threshold: 0.95, minExamples: 10 },
    });
    expect(resolvePolicy(defaults, { interpolation: { k: 5, maxWeight: undefined } }).interpolation).toEqual({ k: 5, maxWeight: 0.8 });
  });

  it("uses the request's strategy, or the tenant's default when it leaves it unspecified", () => {
    expect(requestedStrategy(undefined, S.FUSION_STRATEGY_STACKING)).toBe(S.FUSION_STRATEGY_STACKING);
    expect(requestedStrategy(S.FUSION_STRATEGY_UNSPECIFIED, S.FUSION_STRATEGY_INTERPOLATE)).toBe(S.FUSION_STRATEGY_INTERPOLATE);
    expect(requestedStrategy(S.FUSION_STRATEGY_OVERRIDE, S.FUSION_STRATEGY_STACKING)).toBe(S.FUSION_STRATEGY_OVERRIDE);
  });

  it('rejects an unknown strategy number, listing the valid ones', () => {
    const err = (() => {
      try {
        requestedStrategy(9, S.FUSION_STRATEGY_STACKING, 'items[2].options.strategy');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('items[2].options.strategy');
    expect((err as Error).message).toMatch(/unknown strategy 9; use one of FUSION_STRATEGY_GENERAL_ONLY \(1\).*FUSION_STRATEGY_OVERRIDE \(5\)/);
  });

  it('consults the personal model for every strategy but GENERAL_ONLY', () => {
    expect(needsPersonal(S.FUSION_STRATEGY_GENERAL_ONLY)).toBe(false);
    for (const s of [S.FUSION_STRATEGY_PERSONAL_ONLY, S.FUSION_STRATEGY_INTERPOLATE, S.FUSION_STRATEGY_STACKING, S.FUSION_STRATEGY_OVERRIDE]) expect(needsPersonal(s)).toBe(true);
  });
});
