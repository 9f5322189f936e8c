import { describe, expect, it } from 'vitest';
import { DENY_BY_DEFAULT, advanceHead, changeFingerprint, currentDecisions, defaultFor, nextRecord, purposeDefaultsFromSettings, purposesAsked, sameAsCurrent, withStoredDefaults, type ConsentChange, type ConsentDefaults } from './decisions.js';

const owner = { tenant: 't1', userPseudonym: 'a'.repeat(32) };
const defaults: ConsentDefaults = { base: DENY_BY_DEFAULT, tenants: { acme: { training: 'granted' } } };
const grant: ConsentChange = { purpose: 'personalization', state: 'granted', policyVersion: 'v1', source: 'web', decidedAt: undefined };

describe('consent decisions', () => {
  it('defaults to not granted, per tenant where configured, purpose by purpose', () => {
    expect(defaultFor(defaults, 't1', 'personalization')).toBe('denied');
    expect(defaultFor(defaults, 't1', 'training')).toBe('denied');
    expect(defaultFor(defaults, 'acme', 'training')).toBe('granted');
    expect(defaultFor(defaults, 'acme', 'personalization')).toBe('denied');
  });

  it('derives the current decision from the head, the default where the user never decided', () => {
    expect(currentDecisions(undefined, ['personalization', 'training'], defaults, 'acme')).toEqual([
      { purpose: 'personalization', state: 'denied', isDefault: true },
      { purpose: 'training', state: 'granted', isDefault: true },
    ]);
    const r1 = nextRecord(owner, undefined, grant, new Date(0));
    const head = advanceHead(undefined, r1);
    const r2 = nextRecord(owner, head, { ...grant, state: 'withdrawn' }, new Date(1));
    const head2 = advanceHead(head, r2);
    expect(currentDecisions(head2, ['training', 'personalization'], defaults, 't1')).toEqual([
      { purpose: 'training', state: 'denied', isDefault: true },
      { purpose: 'personalization', state: 'withdrawn', isDefault: false, sequence: 2 },
    ]);
    expect(r2).toMatchObject({ sequence: 2, previousState: 'granted', prevHash: r1.hash });
    expect(head2).toEqual({ sequence: 2, hash: r2.hash, purposes: { personalization: { sequence: 2, state: 'withdrawn', policyVersion: 'v1' } } });
  });

  it('takes the same state under the same policy version as nothing new, another policy version as a new decision', () => {
    const head = advanceHead(undefined, nextRecord(owner, undefined, grant, new Date(0)));
    expect(sameAsCurrent(head, { ...grant, source: 'mobile' })).toEqual({ sequence: 1, state: 'granted', policyVersion: 'v1' });
    expect(sameAsCurrent(head, { ...grant, policyVersion: 'v2' })).toBeUndefined();
    expect(sameAsCurrent(head, { ...grant, state: 'withdrawn' })).toBeUndefined();
    expect(sameAsCurrent(head, { ...grant, purpose: 'training' })).toBeUndefined();
    expect(sameAsCurrent(undefined, grant)).toBeUndefined();
  });

  it('records when the user decided, or when it was recorded', () => {
    const decidedAt = new Date('2026-12-01T08:00:00Z');
    expect(nextRecord(owner, undefined, { ...grant, decidedAt }, new Date('2026-12-05T00:00:00Z')).decidedAt).toBe(decidedAt);
    expect(nextRecord(owner, undefined, grant, new Date(5)).decidedAt).toEqual(new Date(5));
  });

  it('fingerprints a request by everything the caller sent', () => {
    const base = changeFingerprint(grant);
    expect(changeFingerprint({ ...grant })).toBe(base);
    for (const other of [{ state: 'denied' as const }, { purpose: 'training' as const }, { policyVersion: 'v2' }, { source: 'x' }, { decidedAt: new Date(0) }]) {
      expect(changeFingerprint({ ...grant, ...other })).not.toBe(base);
    }
  });

  it('asks every purpose when none is named, each named one once', () => {
    expect(purposesAsked([])).toEqual(['personalization', 'training']);
    expect(purposesAsked(['training', 'training'])).toEqual(['training']);
  });
});

describe("a tenant's stored consent defaults", () => {
  it('are none when the tenant lists none, so the configuration applies', () => {
    expect(purposeDefaultsFromSettings([])).toBeUndefined();
  });

  it('leave unlisted purposes DENIED and skip entries this build cannot read', () => {
    expect(purposeDefaultsFromSettings([{ purpose: 'training', state: 'granted' }])).toEqual({ personalization: 'denied', training: 'granted' });
    expect(
      purposeDefaultsFromSettings([
        { purpose: undefined, state: 'granted' },
        { purpose: 'personalization', state: 'withdrawn' },
        { purpose: 'personalization', state: undefined },
      ]),
    ).toEqual({ personalization: 'denied', training: 'denied' });
  });

  it('replace the configured entry of their tenant only', () => {
    const configured: ConsentDefaults = { base: { personalization: 'granted', training: 'denied' }, tenants: { acme: { training: 'granted' }, beta: { personalization: 'denied' } } };
    const merged = withStoredDefaults(configured, new Map([['acme', { personalization: 'denied', training: 'denied' } as const]]));
    expect(merged.tenants).toEqual({ acme: { personalization: 'denied', training: 'denied' }, beta: { personalization: 'denied' } });
    expect(defaultFor(merged, 'acme', 'training')).toBe('denied');
    expect(defaultFor(merged, 'beta', 'training')).toBe('denied');
    expect(defaultFor(merged, 'other', 'personalization')).toBe('granted');
    expect(withStoredDefaults(configured, new Map())).toBe(configured);
  });
});
