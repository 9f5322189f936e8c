import { DataKeyError, TenantKeyError } from '@aimass/crypto';
import { CancelledError, DeadlineExceededError, FailedPreconditionError, InternalError, UnavailableError, UnimplementedError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { keyFailure } from './data-keys.js';

describe('key failures as the caller sees them', () => {
  it('an erased user: FAILED_PRECONDITION, final', () => {
    const err = keyFailure(new DataKeyError('creation_refused', 'user erased'), 'feedback not recorded');
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(err.message).toBe('feedback not recorded: the user has been erased, so no data of theirs can be encrypted and kept');
  });

  it('privacy unreachable or slow: UNAVAILABLE, retry', () => {
    for (const cause of [new UnavailableError('connect ECONNREFUSED'), new DeadlineExceededError('deadline')]) {
      const err = keyFailure(cause, 'feedback not recorded');
      expect(err).toBeInstanceOf(UnavailableError);
      expect(err.message).toMatch(/^feedback not recorded: the user's data key could not be had in time \(the privacy service, which holds users' keys, is unreachable or slow\); retry$/);
      expect(err.cause).toBe(cause);
    }
  });

  it('a cancelled call stays cancelled', () => {
    const cancelled = new CancelledError('cancelled');
    expect(keyFailure(cancelled, 'x')).toBe(cancelled);
  });

  it('key faults and anything else: INTERNAL (logged, not sent)', () => {
    for (const cause of [
      new DataKeyError('unwrap_failed', 'does not unwrap'),
      new TenantKeyError('unknown_tenant', 'no KEK'),
      new UnimplementedError('unknown service aimass.v1.DataKeyService'),
      new Error('boom'),
    ]) {
      expect(keyFailure(cause, 'x')).toBeInstanceOf(InternalError);
    }
    expect(keyFailure(new DataKeyError('unwrap_failed', 'does not unwrap'), 'x').message).toBe("x: the user's data key is unusable (unwrap_failed): does not unwrap");
  });
});
