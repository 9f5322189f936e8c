import { z } from 'zod';
import { DEFAULT_CONSENT_FAILURE_TTL_MS, DEFAULT_CONSENT_MAX_ENTRIES, DEFAULT_CONSENT_TTL_MS } from './cache.js';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

/**
 * The `cache` part of a consent-enforcing service's `privacy` section (fusion, personal-model,
 * the updater), the `ConsentCache` options: one definition, so the three read the same keys.
 */
export const consentCacheConfigSchema = z.strictObject({
  /**
   * How long a user's consent is answered from memory before it is read again. ConsentChanged
   * updates held users at once; this bounds how long a change whose event was lost goes unseen.
   */
  ttlMs: positiveInt('a duration in milliseconds').default(DEFAULT_CONSENT_TTL_MS),
  /** How long an unreachable privacy service is remembered (use refused) before the next lookup. */
  failureTtlMs: positiveInt('a duration in milliseconds').default(DEFAULT_CONSENT_FAILURE_TTL_MS),
  /** Users held; the oldest is dropped beyond it. */
  maxEntries: positiveInt('a number of entries').default(DEFAULT_CONSENT_MAX_ENTRIES),
});

export type ConsentCacheConfig = z.output<typeof consentCacheConfigSchema>;
