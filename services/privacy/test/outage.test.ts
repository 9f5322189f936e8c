import { status } from '@grpc/grpc-js';
import { ConsentCache, PrivacyConsentLookup } from '@aimass/consent';
import { consentChangedSubject } from '@aimass/events';
import { waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentEventId } from '../src/domain/ids.js';
import { P, S, failure, pseudonymizer, setRequest, startStack, type Stack } from './support/stack.js';

const T = 't1';

/**
 * NATS down: SetConsent answers UNAVAILABLE within the call, the history stays one verified chain,
 * a retry (or the sweep) announces the change once, and a consent cache that lost its connection
 * drops what it held on reconnect.
 */
describe('consent while NATS is down (integration)', () => {
  let stack: Stack;
  let lookup: PrivacyConsentLookup;
  let cache: ConsentCache;

  beforeAll(async () => {
    stack = await startStack();
    lookup = new PrivacyConsentLookup(stack.privacy.address);
    cache = await ConsentCache.start({ bus: await stack.newBus('enforcer'), lookup: lookup.lookup });
  });
  afterAll(async () => {
    await cache?.close();
    lookup?.close();
    await stack?.stop();
  });

  it('answers UNAVAILABLE, keeps the chain whole, and converges on a retry and through the sweep', async () => {
    const alice = pseudonymizer.pseudonymize(T, 'alice');
    const bob = pseudonymizer.pseudonymize(T, 'bob');
    const granted = await stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    expect(await cache.allowed(T, alice, 'training')).toBe(true);

    await stack.nats.kill();
    const withdraw = setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_WITHDRAWN, { idempotencyKey: 'withdraw-1' });
    const started = Date.now();
    const down = await failure(stack.call('setConsent', T, withdraw, { deadlineMs: 5_000 }));
    expect(down.code).toBe(status.UNAVAILABLE);
    expect(down.details).toMatch(/event stream .*retry the same request/);
    expect(Date.now() - started).toBeLessThan(5_000);
    // Bob's change during the outage is never retried: the sweep announces it.
    expect((await failure(stack.call('setConsent', T, setRequest('bob', P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_GRANTED), { deadlineMs: 5_000 }))).code).toBe(status.UNAVAILABLE);

    // Nothing half-written: the decision is in the history, whose chain verifies.
    const history = await stack.call('getConsentHistory', T, { userId: 'alice', purpose: P.PURPOSE_UNSPECIFIED, page: undefined });
    expect(history.chainVerified).toBe(true);
    expect(history.records.map((r) => r.state)).toEqual([S.CONSENT_STATE_GRANTED, S.CONSENT_STATE_WITHDRAWN]);
    // The cache has not heard of it (no event reached it).
    expect(cache.cached(T, alice, 'training')?.allowed).toBe(true);

    await stack.nats.restart();
    // Its connection came back: it drops what it held, the next check reads the privacy service.
    await waitUntil(() => cache.cached(T, alice, 'training') === undefined, 'the cache to drop everything on reconnect', 10_000);
    expect(await cache.check(T, alice, 'training')).toMatchObject({ allowed: false, state: 'withdrawn', from: 'lookup' });

    // The retry announces the recorded withdrawal (once the privacy service's connection is back too).
    let retried: Awaited<ReturnType<typeof stack.call<'setConsent'>>> | undefined;
    await waitUntil(
      async () => {
        retried = await stack.call('setConsent', T, withdraw, { deadlineMs: 3_000 }).catch(() => undefined);
        return retried !== undefined;
      },
      'the retry to succeed',
      15_000,
      200,
    );
    expect(retried).toMatchObject({ duplicate: true, changed: true, record: { sequence: 2 } });
    expect((await stack.call('getConsentHistory', T, { userId: 'alice', purpose: P.PURPOSE_UNSPECIFIED, page: undefined })).records).toHaveLength(2);

    expect(await stack.privacy.sweep({ graceMs: 0 })).toBe(1);
    expect(await stack.privacy.sweep({ graceMs: 0 })).toBe(0);

    const stored = (pseudonym: string) => stack.stored.filter((e) => e.subject === consentChangedSubject(T, pseudonym)).map((e) => e.dedupeId);
    await waitUntil(() => stored(alice).length === 2 && stored(bob).length === 1, 'every change stored in the stream', 15_000);
    expect(stored(alice)).toEqual([consentEventId(granted.record!.hash), consentEventId(retried!.record!.hash)]);
    await new Promise((r) => setTimeout(r, 300));
    expect(stored(alice)).toHaveLength(2);
  });
});
