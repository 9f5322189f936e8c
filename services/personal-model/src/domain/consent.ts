/**
 * The consent rules of personal-model (issue 6), pure: what a consent check means for Score and
 * for the writes that learn from a user's feedback (Train, Refit).
 */
import type { ConsentCheck } from '@aimass/consent';
import { FailedPreconditionError, UnavailableError, type DomainError } from '@aimass/platform';

/** Why a model may not be used for a Score, or undefined when it may. */
export type WithheldReason = 'not_granted' | 'unverifiable';

/**
 * Score uses a user's model only with their `personalization` consent. Anything but a grant
 * withholds it (fail closed), answered as NO_MODEL: a denied read looks like not-found.
 */
export function personalizationWithheld(check: ConsentCheck): WithheldReason | undefined {
  if (check.allowed) return undefined;
  return check.from === 'unavailable' ? 'unverifiable' : 'not_granted';
}

/** What the user decided, in words. */
function decided(check: ConsentCheck): string {
  if (check.isDefault) return "they never decided, and the tenant's default is not granted";
  return check.state === 'withdrawn' ? 'they withdrew it' : 'they denied it';
}

/**
 * Why a Train or Refit must be refused for lack of `training` consent, or undefined when it may
 * learn. Not granted: FAILED_PRECONDITION (retrying cannot help until the user grants it). Not
 * verifiable (the privacy service is unreachable): UNAVAILABLE, a retry may succeed. Either way
 * nothing is written, so a retry with the same idempotency key is safe.
 */
export function trainingRefusal(check: ConsentCheck, operation: 'Train' | 'Refit'): DomainError | undefined {
  if (check.allowed) return undefined;
  if (check.from === 'unavailable') {
    return new UnavailableError(`${operation} refused: the user's training consent could not be verified (the privacy service is unreachable); nothing was written, retry later`, {
      retryAfterMs: 1_000,
    });
  }
  return new FailedPreconditionError(
    `${operation} refused: the user has not granted training consent (${decided(check)}). Their model learns from feedback only once they grant it (PrivacyService.SetConsent, purpose training); nothing was written`,
  );
}
