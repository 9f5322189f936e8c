import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { MAX_KEY_ID_BYTES, validateKeyId, validatePseudonym, validatePurposes, validateSetConsent, validateUserReference, type RequestLimits } from './validation.js';

const limits: RequestLimits = { maxUserIdBytes: 16, maxPolicyVersionBytes: 8, maxSourceBytes: 8, maxKeyBytes: 8, maxClockSkewMs: 60_000 };
const now = new Date('2026-12-05T10:00:00Z');
const valid: v1.SetConsentRequest = {
  userId: 'alice',
  purpose: v1.Purpose.PURPOSE_TRAINING,
  state: v1.ConsentState.CONSENT_STATE_GRANTED,
  policyVersion: 'v1',
  source: 'web',
  decidedAt: undefined,
  idempotencyKey: '',
};

function fieldOf(fn: () => unknown): { field: string | undefined; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return { field: (err as InvalidArgumentError).field, message: (err as Error).message };
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('request validation', () => {
  it('turns a valid request into a decision', () => {
    expect(validateSetConsent(valid, limits, now)).toEqual({
      userId: 'alice',
      change: { purpose: 'training', state: 'granted', policyVersion: 'v1', source: 'web', decidedAt: undefined },
      idempotencyKey: '',
    });
  });

  it('names the field of each bad input', () => {
    const cases: [Partial<v1.SetConsentRequest>, string, RegExp][] = [
      [{ userId: '' }, 'user_id', /user_id is required/],
      [{ userId: 'x'.repeat(17) }, 'user_id', /17 bytes, more than the limit of 16/],
      [{ purpose: v1.Purpose.PURPOSE_UNSPECIFIED }, 'purpose', /purpose is required: PURPOSE_PERSONALIZATION or PURPOSE_TRAINING/],
      [{ purpose: 9 as v1.Purpose }, 'purpose', /purpose 9 is not a known purpose/],
      [{ state: v1.ConsentState.CONSENT_STATE_UNSPECIFIED }, 'state', /state is required/],
      [{ state: 7 as v1.ConsentState }, 'state', /state 7 is not a known consent state/],
      [{ policyVersion: '' }, 'policy_version', /policy_version is required/],
      [{ policyVersion: 'v'.repeat(9) }, 'policy_version', /more than the limit of 8/],
      [{ source: 's'.repeat(9) }, 'source', /more than the limit of 8/],
      [{ idempotencyKey: 'k'.repeat(9) }, 'idempotency_key', /more than the limit of 8/],
      [{ decidedAt: new Date(now.getTime() + 61_000) }, 'decided_at', /lies in the future/],
      [{ decidedAt: new Date(Number.NaN) }, 'decided_at', /not a valid time/],
    ];
    for (const [patch, field, message] of cases) {
      const got = fieldOf(() => validateSetConsent({ ...valid, ...patch }, limits, now));
      expect(got.field).toBe(field);
      expect(got.message).toMatch(message);
    }
    // Within the clock skew allowance.
    expect(validateSetConsent({ ...valid, decidedAt: new Date(now.getTime() + 59_000) }, limits, now).change.decidedAt).toBeDefined();
  });

  it('checks the purposes of GetConsent and a pseudonym handed over by another service', () => {
    expect(validatePurposes([v1.Purpose.PURPOSE_PERSONALIZATION])).toEqual(['personalization']);
    expect(fieldOf(() => validatePurposes([v1.Purpose.PURPOSE_TRAINING, v1.Purpose.PURPOSE_UNSPECIFIED])).field).toBe('purposes[1]');
    expect(validatePseudonym('abcdefghijklmnopqrstuvwxyz234567', 'h')).toBe('abcdefghijklmnopqrstuvwxyz234567');
    expect(fieldOf(() => validatePseudonym('alice@example.com', 'user_pseudonym')).field).toBe('user_pseudonym');
  });

  it("takes GetDataKey's key_id empty or up to the limit, naming the field beyond it", () => {
    expect(validateKeyId('')).toBe('');
    expect(validateKeyId('AbCdEfGh.0123456789abcdefghijkl')).toBe('AbCdEfGh.0123456789abcdefghijkl');
    expect(validateKeyId('k'.repeat(MAX_KEY_ID_BYTES))).toHaveLength(MAX_KEY_ID_BYTES);
    const got = fieldOf(() => validateKeyId('k'.repeat(MAX_KEY_ID_BYTES + 1)));
    expect(got.field).toBe('key_id');
    expect(got.message).toMatch(/key_id is 257 bytes/);
  });

  it('takes exactly one of user_id and user_pseudonym for GetConsent, naming the field otherwise', () => {
    const pseudonym = 'abcdefghijklmnopqrstuvwxyz234567';
    expect(validateUserReference({ userId: 'alice', userPseudonym: '' }, limits)).toEqual({ userId: 'alice' });
    expect(validateUserReference({ userId: '', userPseudonym: pseudonym }, limits)).toEqual({ pseudonym });
    const cases: [{ userId: string; userPseudonym: string }, string, RegExp][] = [
      [{ userId: '', userPseudonym: '' }, 'user_id', /user_id is required: .*or user_pseudonym/],
      [{ userId: 'alice', userPseudonym: pseudonym }, 'user_pseudonym', /both set: send exactly one/],
      [{ userId: '', userPseudonym: 'alice@example.com' }, 'user_pseudonym', /user_pseudonym is not a user pseudonym/],
      // Upper case is not what the Pseudonymizer makes: refused rather than silently not found.
      [{ userId: '', userPseudonym: pseudonym.toUpperCase() }, 'user_pseudonym', /not a user pseudonym/],
      [{ userId: 'x'.repeat(17), userPseudonym: '' }, 'user_id', /17 bytes, more than the limit of 16/],
    ];
    for (const [req, field, message] of cases) {
      const got = fieldOf(() => validateUserReference(req, limits));
      expect(got.field).toBe(field);
      expect(got.message).toMatch(message);
    }
  });
});
