import { ConsentCache, PrivacyConsentLookup } from '@aimass/consent';
import { createInProcessBus, type EventBus } from '@aimass/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P, S, pseudonymizer, setRequest, startStack, type Stack } from './support/stack.js';

const T = 't1';

/** Polls the cache (no network hop) until it refuses the purpose; returns how long that took. */
async function msUntilRefused(cache: ConsentCache, tenant: string, pseudonym: string, purpose: 'personalization' | 'training', since: number, limitMs: number): Promise<number> {
  for (;;) {
    const answer = cache.cached(tenant, pseudonym, purpose) ?? (await cache.check(tenant, pseudonym, purpose));
    if (!answer.allowed) return performance.now() - since;
    if (performance.now() - since > limitMs) throw new Error(`still allowed after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * The consent cache of an enforcing service against the real privacy service: fed by ConsentChanged
 * on its own NATS connection, reading GetConsent on a miss.
 */
describe('ConsentCache against the privacy service (integration)', () => {
  let stack: Stack;
  let lookup: PrivacyConsentLookup;
  let cache: ConsentCache;
  let offline: { bus: EventBus; cache: ConsentCache } | undefined;

  beforeAll(async () => {
    stack = await startStack({ consent: { tenants: { acme: { personalization: 'granted' } } } });
    lookup = new PrivacyConsentLookup(stack.privacy.address, { callTimeoutMs: 2_000 });
    cache = await ConsentCache.start({ bus: await stack.newBus('enforcer'), lookup: lookup.lookup });
  });
  afterAll(async () => {
    await cache?.close();
    await offline?.cache.close();
    await offline?.bus.close();
    lookup?.close();
    await stack?.stop();
  });

  it('applies the tenant default to a user who never decided, then answers from memory', async () => {
    const ann = pseudonymizer.pseudonymize('acme', 'ann');
    expect(await cache.check('acme', ann, 'personalization')).toEqual({ allowed: true, state: 'granted', isDefault: true, from: 'lookup' });
    expect(await cache.check('acme', ann, 'training')).toEqual({ allowed: false, state: 'denied', isDefault: true, from: 'cache' });
    expect(await cache.allowed(T, pseudonymizer.pseudonymize(T, 'ann'), 'personalization')).toBe(false);
    const before = cache.stats().lookups;
    for (let i = 0; i < 100; i++) expect(cache.cached('acme', ann, 'personalization')?.allowed).toBe(true);
    expect(cache.stats().lookups).toBe(before);
  });

  it('sees a grant made after the user was cached, through the event', async () => {
    const pseudonym = pseudonymizer.pseudonymize(T, 'ben');
    expect(await cache.allowed(T, pseudonym, 'training')).toBe(false);
    await stack.call('setConsent', T, setRequest('ben', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const lookups = cache.stats().lookups;
    const start = performance.now();
    while (!cache.cached(T, pseudonym, 'training')?.allowed) {
      if (performance.now() - start > 1_000) throw new Error('grant not seen within 1 s');
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(cache.stats().lookups).toBe(lookups);
  });

  it('bound: a withdrawal takes effect within the event delivery time (asserted ≤ 1 s after SetConsent returns)', async ({ annotate }) => {
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const userId = `withdrawer-${i}`;
      const pseudonym = pseudonymizer.pseudonymize(T, userId);
      await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_GRANTED));
      expect(await cache.allowed(T, pseudonym, 'personalization')).toBe(true);
      await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_WITHDRAWN));
      delays.push(await msUntilRefused(cache, T, pseudonym, 'personalization', performance.now(), 1_000));
      expect(cache.cached(T, pseudonym, 'personalization')).toMatchObject({ state: 'withdrawn', from: 'cache' });
    }
    // In the test report: how long after SetConsent returned the withdrawals reached the cache.
    await annotate(`withdrawal → cache: max ${Math.max(...delays).toFixed(1)} ms (${delays.map((d) => d.toFixed(1)).join(', ')})`);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1_000);
  });

  it('bound: when the event is lost, the withdrawal takes effect within the TTL plus one lookup', async () => {
    // A cache whose bus never receives the privacy service's events: every event is lost to it.
    const bus = createInProcessBus();
    offline = { bus, cache: await ConsentCache.start({ bus, lookup: lookup.lookup, ttlMs: 300 }) };
    const userId = 'lost-event';
    const pseudonym = pseudonymizer.pseudonymize(T, userId);
    await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    expect(await offline.cache.allowed(T, pseudonym, 'training')).toBe(true);
    const loadedAt = performance.now();
    await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_WITHDRAWN));
    expect(offline.cache.cached(T, pseudonym, 'training')?.allowed).toBe(true);
    const took = await msUntilRefused(offline.cache, T, pseudonym, 'training', loadedAt, 2_000);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThanOrEqual(300 + 500);
  });
});
