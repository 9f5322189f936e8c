import { DataKeyError, TenantKeyError } from '@aimass/crypto';
import { CancelledError, DeadlineExceededError, FailedPreconditionError, InternalError, UnavailableError, type DomainError } from '@aimass/platform';

/**
 * What a failure to seal or open with the user's data key means to the caller. `action` opens the
 * message ("feedback not recorded", ...).
 *
 * - The user is erased (the privacy service creates no new key for them): FAILED_PRECONDITION,
 *   final. Their consent is gone with the erasure, so the consent check usually says so first.
 * - The privacy service unreachable or too slow for the call: UNAVAILABLE, a retry may succeed.
 * - The call cancelled: as is.
 * - Anything else (a key that does not unwrap, a missing tenant key, the privacy service refusing
 *   fusion): INTERNAL, an operator's matter; its detail is logged, not sent.
 *
 * A key that was destroyed (crypto-shredding) is not a failure here: what it sealed reads as absent.
 */
export function keyFailure(err: unknown, action: string): DomainError {
  if (err instanceof DataKeyError && err.code === 'creation_refused') {
    return new FailedPreconditionError(`${action}: the user has been erased, so no data of theirs can be encrypted and kept`, { cause: err });
  }
  if (err instanceof CancelledError) return err;
  if (err instanceof UnavailableError || err instanceof DeadlineExceededError) {
    return new UnavailableError(
      `${action}: the user's data key could not be had in time (the privacy service, which holds users' keys, is unreachable or slow); retry`,
      { cause: err },
    );
  }
  if (err instanceof DataKeyError || err instanceof TenantKeyError) {
    return new InternalError(`${action}: the user's data key is unusable (${err.code}): ${err.message}`, { cause: err });
  }
  return new InternalError(`${action}: sealing with the user's data key failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
