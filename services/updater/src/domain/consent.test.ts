import type { ConsentCheck } from '@aimass/consent';
import { UnavailableError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { trainingConsent, trainingVerdict } from './consent.js';

const check = (c: Partial<ConsentCheck>): ConsentCheck => ({ allowed: false, state: 'denied', isDefault: false, from: 'cache', ...c });

describe('training consent as the updater reads it', () => {
  it('is granted only by a grant (the user\'s or the tenant default\'s)', () => {
    expect(trainingVerdict(check({ allowed: true, state: 'granted' }))).toBe('granted');
    expect(trainingVerdict(check({ allowed: true, state: 'granted', isDefault: true, from: 'lookup' }))).toBe('granted');
    expect(trainingVerdict(check({ state: 'withdrawn' }))).toBe('refused');
    expect(trainingVerdict(check({ state: 'denied', isDefault: true, from: 'lookup' }))).toBe('refused');
  });

  it('is unverifiable, not refused, when the privacy service could not be read', () => {
    expect(trainingVerdict(check({ state: undefined, from: 'unavailable' }))).toBe('unverifiable');
  });

  it('answers true or false, and rejects with UNAVAILABLE when it cannot verify', async () => {
    const asked: string[] = [];
    const answers: Record<string, ConsentCheck> = {
      yes: check({ allowed: true, state: 'granted' }),
      no: check({ state: 'withdrawn' }),
      down: check({ state: undefined, from: 'unavailable' }),
    };
    const consent = trainingConsent(async (tenant, pseudonym) => {
      asked.push(`${tenant}/${pseudonym}`);
      return answers[pseudonym]!;
    });
    expect(await consent('t', 'yes')).toBe(true);
    expect(await consent('t', 'no')).toBe(false);
    const err = await consent('t', 'down').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(String(err)).toMatch(/privacy service is unreachable/);
    expect(asked).toEqual(['t/yes', 't/no', 't/down']);
  });
});
