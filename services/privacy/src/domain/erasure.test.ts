import type { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ERASURE_SERVICES,
  expectedServices,
  missingServices,
  newTombstone,
  overallStatus,
  receiptLines,
  roundDue,
  validateErase,
  validateErasureId,
  withConfirmation,
  withKeyDestroyed,
  type Confirmation,
  type Tombstone,
} from './erasure.js';

const at = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s));
const done = (service: string, s: number, items = 1): Confirmation => ({ service, status: 'completed', confirmedAt: at(s), itemsDeleted: items, detail: '' });
const failed = (service: string, s: number, detail: string): Confirmation => ({ service, status: 'failed', confirmedAt: at(s), itemsDeleted: 0, detail });

function tombstone(services: readonly string[] = ['personal-model', 'updater']): Tombstone {
  return newTombstone({ tenant: 't1', pseudonym: 'p', erasureId: 'e', reason: 'gdpr-art17', services, now: at(0) });
}

function confirmAll(t: Tombstone, ...cs: Confirmation[]): Tombstone {
  return cs.reduce((x, c) => withConfirmation(x, c) ?? x, t);
}

const LIMITS = { maxUserIdBytes: 8, maxPolicyVersionBytes: 8, maxSourceBytes: 8, maxKeyBytes: 4, maxClockSkewMs: 0, maxReasonBytes: 6 };

describe('erasure bookkeeping', () => {
  it('expects privacy first and every configured service once; the default includes fusion', () => {
    expect(expectedServices(['updater', 'privacy', 'updater'])).toEqual(['privacy', 'updater']);
    expect(DEFAULT_ERASURE_SERVICES).toEqual(['privacy', 'personal-model', 'updater', 'fusion']);
    expect(tombstone().services).toEqual(['privacy', 'personal-model', 'updater']);
  });

  it('records when the data key was destroyed once: a repeated destruction keeps the first time', () => {
    const t = tombstone();
    expect(t.keyDestroyedAt).toBeUndefined();
    const destroyed = withKeyDestroyed(t, at(2))!;
    expect(destroyed.keyDestroyedAt).toEqual(at(2));
    expect(withKeyDestroyed(destroyed, at(9))).toBeUndefined();
    // Confirmations keep it.
    expect(withConfirmation(destroyed, done('privacy', 3))!.keyDestroyedAt).toEqual(at(2));
  });

  it('completes once every expected service completed, at the latest confirmation', () => {
    let t = confirmAll(tombstone(), done('privacy', 1), done('updater', 5));
    expect(overallStatus(t)).toBe('pending');
    expect(missingServices(t)).toEqual(['personal-model']);
    t = confirmAll(t, done('personal-model', 3));
    expect(overallStatus(t)).toBe('completed');
    expect(t.completedAt).toEqual(at(5));
  });

  it('keeps the first COMPLETED, lets a later answer replace a FAILED, and reports FAILED meanwhile', () => {
    let t = confirmAll(tombstone(), done('privacy', 1), failed('updater', 2, 'store down'));
    expect(overallStatus(t)).toBe('failed');
    expect(withConfirmation(t, failed('updater', 2, 'store down'))).toBeUndefined();
    t = confirmAll(t, done('updater', 4, 7));
    expect(withConfirmation(t, done('updater', 9, 0))).toBeUndefined();
    expect(withConfirmation(t, failed('updater', 10, 'late'))).toBeUndefined();
    expect(receiptLines(t).find((l) => l.service === 'updater')).toMatchObject({ status: 'completed', itemsDeleted: 7, confirmedAt: at(4) });
    expect(overallStatus(t)).toBe('pending');
  });

  it('lists every expected service (pending ones too), then services nobody expected', () => {
    const t = confirmAll(tombstone(['fusion']), done('archive', 2), done('privacy', 1));
    expect(receiptLines(t).map((l) => [l.service, l.status])).toEqual([
      ['privacy', 'completed'],
      ['fusion', 'pending'],
      ['archive', 'completed'],
    ]);
    expect(overallStatus(t)).toBe('pending');
  });

  it('publishes an unpublished round after the grace period, and asks again after the retry interval while a service is missing', () => {
    const o = { graceMs: 5_000, retryIntervalMs: 60_000 };
    const t = tombstone();
    expect(roundDue(t, at(1), o)).toBeUndefined();
    expect(roundDue(t, at(5), o)).toBe('publish');
    const published = { ...t, roundPublished: true };
    expect(roundDue(published, at(59), o)).toBeUndefined();
    expect(roundDue(published, at(60), o)).toBe('next-round');
    // Only privacy missing: its own part is done by the sweep, not by asking the others again.
    const othersDone = confirmAll(published, done('personal-model', 1), done('updater', 1));
    expect(roundDue(othersDone, at(120), o)).toBeUndefined();
    expect(roundDue(confirmAll(othersDone, done('privacy', 2)), at(120), o)).toBeUndefined();
  });

  it('validates Erase and erasure ids, naming the field', () => {
    const req = (more: Partial<v1.EraseRequest>): v1.EraseRequest => ({ userId: 'u1', reason: '', idempotencyKey: '', ...more });
    expect(validateErase(req({ reason: 'gdpr' }), LIMITS)).toEqual({ userId: 'u1', reason: 'gdpr', idempotencyKey: '' });
    expect(() => validateErase(req({ userId: '' }), LIMITS)).toThrow(/user_id is required/);
    expect(() => validateErase(req({ reason: 'x'.repeat(7) }), LIMITS)).toThrow(/reason is 7 bytes/);
    expect(() => validateErase(req({ idempotencyKey: 'kkkkk' }), LIMITS)).toThrow(/idempotency_key is 5 bytes/);
    expect(validateErasureId('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b')).toBe('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b');
    expect(() => validateErasureId('')).toThrow(/erasure_id is required/);
    expect(() => validateErasureId('e1')).toThrow(/not an erasure id/);
  });
});
