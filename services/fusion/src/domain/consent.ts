import type { ConsentCheck } from '@aimass/consent';
import { FailedPreconditionError, UnavailableError, type DomainError } from '@aimass/platform';

/** May the personal model be used for this user's prediction? */
export type PersonalizationDecision = { readonly allowed: true } | { readonly allowed: false; readonly detail: string };

/** What the user decided, in words (`withdrew it`, `denied it`, the tenant's default). */
function decided(check: ConsentCheck): string {
  if (check.isDefault) return "they never decided, and the tenant's default is not granted";
  return check.state === 'withdrawn' ? 'they withdrew it' : 'they denied it';
}

/**
 * The personalization verdict from a consent check. `undefined`: the check did not finish within
 * the personal stage's deadline. Anything but a grant keeps the personal model out (fail closed),
 * and the detail goes into the NO_CONSENT fallback of the answer.
 */
export function personalizationDecision(check: ConsentCheck | undefined): PersonalizationDecision {
  if (check?.allowed) return { allowed: true };
  if (!check) return { allowed: false, detail: "personalization consent could not be verified within the personal stage's deadline (the privacy service is slow): answering with the general model" };
  if (check.from === 'unavailable') {
    return { allowed: false, detail: 'personalization consent could not be verified (the privacy service is unreachable): answering with the general model until it answers' };
  }
  return { allowed: false, detail: `the user has not granted personalization consent (${decided(check)}): answering with the general model` };
}

const NOTHING_RECORDED = 'nothing was stored or published';

/**
 * Why Feedback must be refused for lack of `training` consent, or undefined when it may be
 * recorded. `undefined` check: it did not finish within the call's deadline.
 *
 * - Not granted: FAILED_PRECONDITION, the client must not retry until the user grants it.
 * - Not verifiable (privacy unreachable or too slow): UNAVAILABLE, a retry may succeed. Both are
 *   certain refusals: nothing is recorded, so the same idempotency key can be used again.
 */
export function trainingRefusal(check: ConsentCheck | undefined): DomainError | undefined {
  if (check?.allowed) return undefined;
  if (!check) {
    return new UnavailableError(`feedback not recorded: training consent could not be verified within the call's deadline (the privacy service is slow); ${NOTHING_RECORDED}, retry`);
  }
  if (check.from === 'unavailable') {
    return new UnavailableError(`feedback not recorded: training consent could not be verified (the privacy service is unreachable); ${NOTHING_RECORDED}, retry later`);
  }
  return new FailedPreconditionError(
    `the user has not granted training consent: ${decided(check)}. Feedback is not learnt from until the user grants it (PrivacyService.SetConsent, purpose training); ${NOTHING_RECORDED}`,
  );
}
