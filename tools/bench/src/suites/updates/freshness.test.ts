import { describe, expect, it } from 'vitest';
import type { Provenance } from '@aimass/sdk';
import { appliedBetween, outcomeOf, perSecond, reflects, UserPicker, versionNumber, versionSeen } from './freshness.js';

function provenance(p: Partial<Provenance>): { provenance: Provenance } {
  return { provenance: { requestedStrategy: 'unspecified', appliedStrategy: 'stacking', models: [], fallbacks: [], timingsMs: {}, ...p } };
}

const general = { name: 'general', version: '1', role: 'general' as const, weight: 1 };

describe('versionSeen', () => {
  it('reads the personal model version from the provenance', () => {
    const seen = versionSeen(provenance({ models: [general, { name: 'personal-logreg', version: '7', role: 'personal', weight: 0.4 }] }));
    expect(seen).toEqual({ kind: 'model', version: 7 });
    expect(versionNumber(seen)).toBe(7);
  });

  it('takes no personal model as version 0', () => {
    const seen = versionSeen(provenance({ appliedStrategy: 'general', models: [general], fallbacks: [{ reason: 'no_personal_model', role: 'personal', detail: '' }] }));
    expect(seen).toEqual({ kind: 'none' });
    expect(versionNumber(seen)).toBe(0);
  });

  it('cannot tell when the personal stage failed or was skipped', () => {
    for (const reason of ['personal_timeout', 'personal_error', 'circuit_open'] as const) {
      const seen = versionSeen(provenance({ appliedStrategy: 'general', models: [general], fallbacks: [{ reason, role: 'personal', detail: '' }] }));
      expect(seen).toEqual({ kind: 'unknown', reason });
      expect(versionNumber(seen)).toBeUndefined();
    }
    expect(versionSeen(provenance({ models: [general, { name: 'p', version: '', role: 'personal', weight: 0 }] })).kind).toBe('unknown');
  });
});

describe('reflects', () => {
  it('is true only for a model version above the baseline', () => {
    expect(reflects({ kind: 'model', version: 1 }, 0)).toBe(true);
    expect(reflects({ kind: 'model', version: 4 }, 3)).toBe(true);
    expect(reflects({ kind: 'model', version: 3 }, 3)).toBe(false);
    expect(reflects({ kind: 'none' }, 0)).toBe(false);
    expect(reflects({ kind: 'unknown', reason: 'personal_timeout' }, 0)).toBe(false);
  });
});

describe('outcomeOf', () => {
  it('names the applied strategy or the first fallback', () => {
    expect(outcomeOf(provenance({}))).toBe('applied:stacking');
    expect(outcomeOf(provenance({ fallbacks: [{ reason: 'no_personal_model', role: 'personal', detail: '' }] }))).toBe('fallback:no_personal_model');
  });
});

describe('UserPicker', () => {
  it('never picks a held or retired user, and picks the others uniformly', () => {
    let x = 0;
    const random = () => {
      x = (x + 0.137) % 1;
      return x;
    };
    const picker = new UserPicker(10, random);
    picker.hold(3);
    picker.retire(5);
    const counts = new Map<number, number>();
    for (let i = 0; i < 8000; i++) {
      const rank = picker.pick()!;
      counts.set(rank, (counts.get(rank) ?? 0) + 1);
    }
    expect(counts.has(3)).toBe(false);
    expect(counts.has(5)).toBe(false);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([1, 2, 4, 6, 7, 8, 9, 10]);
    for (const c of counts.values()) expect(c).toBeGreaterThan(700);
    picker.release(3);
    expect(new Set(Array.from({ length: 200 }, () => picker.pick())).has(3)).toBe(true);
    expect(picker.retiredCount).toBe(1);
  });

  it('gives up when every user is taken', () => {
    const picker = new UserPicker(2, Math.random);
    picker.hold(1);
    picker.retire(2);
    expect(picker.pick()).toBeUndefined();
  });
});

describe('appliedBetween', () => {
  it('counts what left the pending set among accepted events', () => {
    // 100 accepted, 30 pending at the start; 300 accepted, 10 pending at the end: 220 applied.
    expect(appliedBetween({ accepted: 100, pending: 30 }, { accepted: 300, pending: 10 })).toBe(220);
    expect(appliedBetween({ accepted: 0, pending: 0 }, { accepted: 50, pending: 50 })).toBe(0);
  });
});

describe('perSecond', () => {
  it('buckets times by whole seconds from the start, dropping those outside', () => {
    expect(perSecond([999, 1000, 1500, 2999, 3000, 5200, 400], 1000, 3)).toEqual([2, 1, 1]);
  });
});
