import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { applyTenantUpdate, fullSettings, hasControlCharacters, pageSize, policyOverridesFromSettings, quotaFromSettings, validateDisplayName, validateSettings } from './tenants.js';

const current = () => ({
  displayName: 'Acme',
  settings: fullSettings({
    defaultStrategy: v1.FusionStrategy.FUSION_STRATEGY_STACKING,
    consentDefaults: [],
    quota: { ratePerSecond: 10, burst: 20, maxConcurrency: 4 },
    generalModelName: 'general',
    interpolationWeight: 0.5,
    overrideThreshold: 0,
  }),
});

const update = (partial: Partial<v1.UpdateTenantRequest>): v1.UpdateTenantRequest => v1.UpdateTenantRequest.fromPartial({ tenantId: 'acme', ...partial });

describe('applyTenantUpdate', () => {
  it('changes exactly the paths of the mask, leaves the rest', () => {
    const next = applyTenantUpdate(current(), update({ settings: { quota: { ratePerSecond: 99, burst: 1, maxConcurrency: 1 } } as v1.TenantSettings, updateMask: ['settings.quota.rate_per_second'] }));
    expect(next.settings.quota).toEqual({ ratePerSecond: 99, burst: 20, maxConcurrency: 4 });
    expect(next.displayName).toBe('Acme');
    expect(next.settings.generalModelName).toBe('general');
  });

  it('replaces a whole parent, with defaults for what the request leaves unset; accepts camelCase paths', () => {
    const next = applyTenantUpdate(current(), update({ displayName: 'Acme Corp', settings: fullSettings({ generalModelName: 'big' }), updateMask: ['displayName', 'settings'] }));
    expect(next.displayName).toBe('Acme Corp');
    expect(next.settings).toMatchObject({ generalModelName: 'big', interpolationWeight: 0, quota: { ratePerSecond: 0, burst: 0, maxConcurrency: 0 } });
  });

  it('without a mask, changes what the request sets', () => {
    expect(applyTenantUpdate(current(), update({ displayName: 'New' })).displayName).toBe('New');
    expect(() => applyTenantUpdate(current(), update({}))).toThrow(/nothing to update/);
  });

  it('refuses unknown paths and invalid values with INVALID_ARGUMENT naming the field', () => {
    expect(() => applyTenantUpdate(current(), update({ updateMask: ['settings.secret_sauce'] }))).toThrow(/cannot be updated/);
    try {
      applyTenantUpdate(current(), update({ settings: fullSettings({ interpolationWeight: 1.5 }), updateMask: ['settings.interpolation_weight'] }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe('settings.interpolation_weight');
    }
  });
});

describe('settings and names', () => {
  it('validates strategies, consent defaults, quotas and weights', () => {
    expect(validateSettings(fullSettings({}))).toBeDefined();
    expect(() => validateSettings(fullSettings({ defaultStrategy: 99 as v1.FusionStrategy }))).toThrow(/default_strategy/);
    expect(() => validateSettings(fullSettings({ quota: { ratePerSecond: Number.NaN, burst: 0, maxConcurrency: 0 } }))).toThrow(/rate_per_second/);
    expect(() => validateSettings(fullSettings({ overrideThreshold: -0.1 }))).toThrow(/override_threshold/);
    const twice = [
      { purpose: v1.Purpose.PURPOSE_TRAINING, state: v1.ConsentState.CONSENT_STATE_GRANTED },
      { purpose: v1.Purpose.PURPOSE_TRAINING, state: v1.ConsentState.CONSENT_STATE_DENIED },
    ];
    expect(() => validateSettings(fullSettings({ consentDefaults: twice }))).toThrow(/listed twice/);
    expect(() => validateSettings(fullSettings({ consentDefaults: [{ purpose: v1.Purpose.PURPOSE_TRAINING, state: v1.ConsentState.CONSENT_STATE_WITHDRAWN }] }))).toThrow(/GRANTED or DENIED/);
  });

  it('trims display names and refuses control characters and overlong ones', () => {
    expect(validateDisplayName('  Acme  ')).toBe('Acme');
    expect(hasControlCharacters('a\u0007b')).toBe(true);
    expect(() => validateDisplayName('a\nb')).toThrow(/control characters/);
    expect(() => validateDisplayName('x'.repeat(201))).toThrow(/longer than 200/);
  });

  it('page sizes: 0 means the default, capped, never negative', () => {
    expect(pageSize(undefined)).toBe(100);
    expect(pageSize({ pageSize: 5000, pageToken: '' })).toBe(1000);
    expect(() => pageSize({ pageSize: -1, pageToken: '' })).toThrow(InvalidArgumentError);
  });
});

describe('what stored settings change', () => {
  it('lays only the values a tenant set over the configuration (0 and UNSPECIFIED keep the service default)', () => {
    expect(policyOverridesFromSettings(fullSettings({}))).toEqual({});
    expect(policyOverridesFromSettings(current().settings)).toEqual({ strategy: v1.FusionStrategy.FUSION_STRATEGY_STACKING, interpolation: { maxWeight: 0.5 } });
    expect(policyOverridesFromSettings(fullSettings({ overrideThreshold: 0.9 }))).toEqual({ override: { threshold: 0.9 } });
  });

  it('takes a quota only when it limits something', () => {
    expect(quotaFromSettings(fullSettings({}))).toBeUndefined();
    expect(quotaFromSettings(fullSettings({ quota: { ratePerSecond: 0, burst: 50, maxConcurrency: 0 } }))).toBeUndefined();
    expect(quotaFromSettings(current().settings)).toEqual({ ratePerSecond: 10, burst: 20, maxConcurrency: 4 });
    expect(quotaFromSettings(fullSettings({ quota: { ratePerSecond: 0, burst: 0, maxConcurrency: 2 } }))).toEqual({ ratePerSecond: 0, burst: 0, maxConcurrency: 2 });
  });
});
