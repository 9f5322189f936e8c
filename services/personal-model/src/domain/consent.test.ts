import type { ConsentCheck } from '@aimass/consent';
import { FailedPreconditionError, UnavailableError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { personalizationWithheld, trainingRefusal } from './consent.js';

const granted: ConsentCheck = { allowed: true, state: 'granted', isDefault: false, from: 'cache' };
const withdrawn: ConsentCheck = { allowed: false, state: 'withdrawn', isDefault: false, from: 'cache' };
const denied: ConsentCheck = { allowed: false, state: 'denied', isDefault: false, from: 'lookup' };
const byDefault: ConsentCheck = { allowed: false, state: 'denied', isDefault: true, from: 'lookup' };
const unavailable: ConsentCheck = { allowed: false, state: undefined, isDefault: false, from: 'unavailable' };

describe('personalization consent on Score', () => {
  it('uses the model only with a grant, and says why it is withheld otherwise', () => {
    expect(personalizationWithheld(granted)).toBeUndefined();
    expect(personalizationWithheld(withdrawn)).toBe('not_granted');
    expect(personalizationWithheld(byDefault)).toBe('not_granted');
    expect(personalizationWithheld(unavailable)).toBe('unverifiable');
  });
});

describe('training consent on Train and Refit', () => {
  it('lets a grant through', () => {
    expect(trainingRefusal(granted, 'Train')).toBeUndefined();
  });

  it('refuses a missing grant with FAILED_PRECONDITION naming the decision and what to do', () => {
    const w = trainingRefusal(withdrawn, 'Train');
    expect(w).toBeInstanceOf(FailedPreconditionError);
    expect(w!.message).toMatch(/^Train refused: .*withdrew it.*SetConsent, purpose training.*nothing was written/);
    expect(trainingRefusal(denied, 'Refit')!.message).toMatch(/^Refit refused: .*denied it/);
    expect(trainingRefusal(byDefault, 'Train')!.message).toMatch(/never decided, and the tenant's default is not granted/);
  });

  it('refuses an unverifiable consent with UNAVAILABLE, so the caller retries', () => {
    const e = trainingRefusal(unavailable, 'Refit');
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e!.message).toMatch(/privacy service is unreachable.*retry later/);
  });
});
