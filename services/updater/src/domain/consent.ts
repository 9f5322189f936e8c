/**
 * The updater's reading of a user's `training` consent. A check has three outcomes, and each
 * leads somewhere else:
 *
 * - granted: the feedback is taken in, or trained on;
 * - refused (denied, withdrawn, or the tenant's default is not granted): the feedback is dropped,
 *   for good: acknowledged at intake without being stored, removed from the history at apply;
 * - unverifiable (the privacy service cannot be read): nothing is decided, the work waits and is
 *   retried. Dropping here would lose the feedback of every user during a privacy outage.
 */
import type { ConsentCheck } from '@aimass/consent';
import { UnavailableError } from '@aimass/platform';

export type TrainingVerdict = 'granted' | 'refused' | 'unverifiable';

export function trainingVerdict(check: ConsentCheck): TrainingVerdict {
  if (check.allowed) return 'granted';
  return check.from === 'unavailable' ? 'unverifiable' : 'refused';
}

/** Whether the user's consent allows training; rejects with UnavailableError when it cannot be verified. */
export type TrainingConsent = (tenant: string, pseudonym: string) => Promise<boolean>;

/** What the intake, the applier and the refitter throw when consent cannot be verified now. */
export function consentUnverifiable(): UnavailableError {
  return new UnavailableError('training consent cannot be verified: the privacy service is unreachable; the feedback waits and is retried', { retryAfterMs: 1_000 });
}

/** A TrainingConsent reading `check` (a ConsentCache's, purpose `training`). */
export function trainingConsent(check: (tenant: string, pseudonym: string) => Promise<ConsentCheck>): TrainingConsent {
  return async (tenant, pseudonym) => {
    const verdict = trainingVerdict(await check(tenant, pseudonym));
    if (verdict === 'unverifiable') throw consentUnverifiable();
    return verdict === 'granted';
  };
}
