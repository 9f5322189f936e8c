import type { ConsentCheck } from '@aimass/consent';
import { FailedPreconditionError, UnavailableError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { personalizationDecision, trainingRefusal } from './consent.js';

const granted: ConsentCheck = { allowed: true, state: 'granted', isDefault: false, from: 'cache' };
const grantedByDefault: ConsentCheck = { allowed: true, state: 'granted', isDefault: true, from: 'lookup' };
const tenantDefault: ConsentCheck = { allowed: false, state: 'denied', isDefault: true, from: 'lookup' };
const denied: ConsentCheck = { allowed: false, state: 'denied', isDefault: false, from: 'cache' };
const withdrawn: ConsentCheck = { allowed: false, state: 'withdrawn', isDefault: false, from: 'cache' };
const unavailable: ConsentCheck = { allowed: false, state: undefined, isDefault: false, from: 'unavailable' };

describe('personalizationDecision', () => {
  it('allows only a grant (the user\'s or the tenant\'s default)', () => {
    expect(personalizationDecision(granted)).toEqual({ allowed: true });
    expect(personalizationDecision(grantedByDefault)).toEqual({ allowed: true });
  });

  it('says why the personal model is not used', () => {
    expect(personalizationDecision(tenantDefault)).toEqual({
      allowed: false,
      detail: "the user has not granted personalization consent (they never decided, and the tenant's default is not granted): answering with the general model",
    });
    expect(personalizationDecision(denied)).toMatchObject({ allowed: false, detail: expect.stringContaining('(they denied it)') });
    expect(personalizationDecision(withdrawn)).toMatchObject({ allowed: false, detail: expect.stringContaining('(they withdrew it)') });
  });

  it('fails closed when consent cannot be verified: unreachable, or not within the deadline', () => {
    expect(personalizationDecision(unavailable)).toMatchObject({ allowed: false, detail: expect.stringMatching(/^personalization consent could not be verified \(the privacy service is unreachable\)/) });
    expect(personalizationDecision(undefined)).toMatchObject({ allowed: false, detail: expect.stringMatching(/^personalization consent could not be verified within the personal stage's deadline/) });
  });
});

describe('trainingRefusal', () => {
  it('lets granted feedback through', () => {
    expect(trainingRefusal(granted)).toBeUndefined();
    expect(trainingRefusal(grantedByDefault)).toBeUndefined();
  });

  it('refuses feedback without a grant with FAILED_PRECONDITION, saying what the user decided and how to change it', () => {
    for (const [check, decided] of [
      [tenantDefault, "they never decided, and the tenant's default is not granted"],
      [denied, 'they denied it'],
      [withdrawn, 'they withdrew it'],
    ] as const) {
      const err = trainingRefusal(check);
      expect(err).toBeInstanceOf(FailedPreconditionError);
      expect(err!.message).toBe(
        `the user has not granted training consent: ${decided}. Feedback is not learnt from until the user grants it (PrivacyService.SetConsent, purpose training); nothing was stored or published`,
      );
    }
  });

  it('answers UNAVAILABLE (retry) when consent cannot be verified', () => {
    const unreachable = trainingRefusal(unavailable);
    expect(unreachable).toBeInstanceOf(UnavailableError);
    expect(unreachable!.message).toMatch(/^feedback not recorded: training consent could not be verified \(the privacy service is unreachable\); nothing was stored or published, retry later$/);
    const late = trainingRefusal(undefined);
    expect(late).toBeInstanceOf(UnavailableError);
    expect(late!.message).toMatch(/within the call's deadline/);
  });
});
