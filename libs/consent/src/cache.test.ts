import { afterEach, describe, expect, it } from 'vitest';
import { v1 } from '@aimass/proto';
import {
  CONSENT_STREAM,
  consentChangedSubject,
  createInProcessBus,
  encodeEvent,
  newEnvelope,
  publishEvent,
  type EventBus,
  type InProcessEventBus,
  type SubscribeOptions,
} from '@aimass/events';
import { ConsentCache, type ConsentDecisionView } from './cache.js';
import { consentStateToProto, purposeToProto, type ConsentPurpose, type ConsentStateName } from './purposes.js';

const TENANT = 't1';
const ALICE = 'a'.repeat(32);
const BOB = 'b'.repeat(32);

/** The privacy service's state as the fake lookup sees it. */
class FakePrivacy {
  readonly decisions = new Map<string, ConsentDecisionView[]>();
  calls = 0;
  failing = false;
  /** When set, lookups wait for it. */
  gate: Promise<void> | undefined;

  set(pseudonym: string, purpose: ConsentPurpose, state: ConsentStateName, sequence: number): void {
    const list = (this.decisions.get(pseudonym) ?? []).filter((d) => d.purpose !== purpose);
    list.push({ purpose, state, sequence, isDefault: false });
    this.decisions.set(pseudonym, list);
  }

  readonly lookup = async (_tenant: string, pseudonym: string): Promise<ConsentDecisionView[]> => {
    this.calls++;
    const answer = this.decisions.get(pseudonym) ?? [];
    await this.gate;
    if (this.failing) throw new Error('privacy unreachable');
    const defaults: ConsentDecisionView[] = (['personalization', 'training'] as const)
      .filter((p) => !answer.some((d) => d.purpose === p))
      .map((purpose) => ({ purpose, state: 'denied', sequence: 0, isDefault: true }));
    return [...answer, ...defaults];
  };
}

async function publishChange(bus: EventBus, pseudonym: string, purpose: ConsentPurpose, state: ConsentStateName, sequence: number, subject = consentChangedSubject(TENANT, pseudonym)): Promise<void> {
  await publishEvent(bus, subject, 'aimass.v1.ConsentChanged', {
    envelope: newEnvelope({ type: 'aimass.v1.ConsentChanged', tenant: TENANT, userPseudonym: pseudonym, producer: 'test', eventId: `${pseudonym}-${sequence}` }),
    purpose: purposeToProto(purpose),
    state: consentStateToProto(state),
    previousState: v1.ConsentState.CONSENT_STATE_UNSPECIFIED,
    policyVersion: 'v1',
    source: 'test',
    recordSequence: sequence,
    recordHash: 'f'.repeat(64),
  });
}

/** Live handlers run after the publisher's answer (as on NATS): let them. */
const settle = () => new Promise((r) => setTimeout(r, 5));

describe('ConsentCache', () => {
  let bus: InProcessEventBus;
  let cache: ConsentCache | undefined;
  const errors: unknown[] = [];

  const start = async (privacy: FakePrivacy, options: { ttlMs?: number; failureTtlMs?: number; maxEntries?: number; now?: () => number; bus?: EventBus } = {}) => {
    bus = createInProcessBus();
    await bus.ensureStream(CONSENT_STREAM);
    cache = await ConsentCache.start({ bus: options.bus ?? bus, lookup: privacy.lookup, onError: (e) => errors.push(e), ...options });
    return cache;
  };

  afterEach(async () => {
    await cache?.close();
    await bus?.close();
    errors.length = 0;
  });

  it('reads a user once, then answers from memory, with the tenant default for a user who never decided', async () => {
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'personalization', 'granted', 1);
    const c = await start(privacy);
    expect(c.cached(TENANT, ALICE, 'personalization')).toBeUndefined();
    expect(await c.check(TENANT, ALICE, 'personalization')).toEqual({ allowed: true, state: 'granted', isDefault: false, from: 'lookup' });
    expect(await c.check(TENANT, ALICE, 'training')).toEqual({ allowed: false, state: 'denied', isDefault: true, from: 'cache' });
    expect(c.cached(TENANT, ALICE, 'personalization')).toMatchObject({ allowed: true, from: 'cache' });
    expect(await c.allowed(TENANT, BOB, 'personalization')).toBe(false);
    expect(privacy.calls).toBe(2);
    expect(c.stats()).toMatchObject({ entries: 2, lookups: 2 });
  });

  it('shares one lookup among concurrent checks of a user', async () => {
    const privacy = new FakePrivacy();
    let open!: () => void;
    privacy.gate = new Promise((r) => (open = r));
    const c = await start(privacy);
    const checks = [c.check(TENANT, ALICE, 'training'), c.check(TENANT, ALICE, 'personalization'), c.check(TENANT, ALICE, 'training')];
    open();
    expect((await Promise.all(checks)).map((x) => x.allowed)).toEqual([false, false, false]);
    expect(privacy.calls).toBe(1);
  });

  it('applies a withdrawal of a held user as soon as its event arrives', async () => {
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'training', 'granted', 1);
    const c = await start(privacy);
    expect(await c.allowed(TENANT, ALICE, 'training')).toBe(true);
    privacy.set(ALICE, 'training', 'withdrawn', 2);
    await publishChange(bus, ALICE, 'training', 'withdrawn', 2);
    await settle();
    expect(c.cached(TENANT, ALICE, 'training')).toEqual({ allowed: false, state: 'withdrawn', isDefault: false, from: 'cache' });
    expect(privacy.calls).toBe(1);
  });

  it('never puts an older decision back: a repeated or late event with a lower sequence is ignored', async () => {
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'training', 'withdrawn', 5);
    const c = await start(privacy);
    expect(await c.allowed(TENANT, ALICE, 'training')).toBe(false);
    await publishChange(bus, ALICE, 'training', 'granted', 4);
    await publishChange(bus, ALICE, 'training', 'granted', 5);
    await settle();
    expect(c.cached(TENANT, ALICE, 'training')?.state).toBe('withdrawn');
    // A decision for the other purpose with a higher sequence still applies.
    await publishChange(bus, ALICE, 'personalization', 'granted', 6);
    await settle();
    expect(c.cached(TENANT, ALICE, 'personalization')).toMatchObject({ allowed: true, isDefault: false });
  });

  it('merges an event that arrives while the lookup is in flight, so a lookup that read just before the change cannot undo it', async () => {
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'personalization', 'granted', 3);
    let open!: () => void;
    privacy.gate = new Promise((r) => (open = r));
    const c = await start(privacy);
    const pending = c.check(TENANT, ALICE, 'personalization');
    await settle();
    // The lookup has read seq 3 (granted) and has not answered yet when the withdrawal arrives.
    await publishChange(bus, ALICE, 'personalization', 'withdrawn', 4);
    await settle();
    open();
    expect(await pending).toMatchObject({ allowed: false, state: 'withdrawn', from: 'lookup' });
    expect(c.cached(TENANT, ALICE, 'personalization')?.state).toBe('withdrawn');
  });

  it('does not hold users it was never asked about: their events wait for the first check', async () => {
    const privacy = new FakePrivacy();
    const c = await start(privacy);
    await publishChange(bus, BOB, 'training', 'granted', 1);
    await settle();
    expect(c.stats()).toMatchObject({ entries: 0, events: 1 });
    privacy.set(BOB, 'training', 'granted', 1);
    expect(await c.check(TENANT, BOB, 'training')).toMatchObject({ allowed: true, from: 'lookup' });
  });

  it('bound: a withdrawal whose event is lost takes effect after at most the TTL', async () => {
    let now = 1_000_000;
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'personalization', 'granted', 1);
    const c = await start(privacy, { ttlMs: 30_000, now: () => now });
    expect(await c.allowed(TENANT, ALICE, 'personalization')).toBe(true);
    // Recorded by the privacy service, but its event never reaches this cache.
    privacy.set(ALICE, 'personalization', 'withdrawn', 2);
    now += 29_999;
    expect(await c.check(TENANT, ALICE, 'personalization')).toMatchObject({ allowed: true, from: 'cache' });
    now += 1;
    expect(await c.check(TENANT, ALICE, 'personalization')).toMatchObject({ allowed: false, state: 'withdrawn', from: 'lookup' });
  });

  it('drops everything on a gap, including the answer of a lookup that was in flight', async () => {
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'training', 'granted', 1);
    let onGap: (() => void) | undefined;
    const inner = createInProcessBus();
    await inner.ensureStream(CONSENT_STREAM);
    // The in-process bus never loses events; this one reports a gap as NATS does after a reconnect.
    const gappy = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'subscribe') {
          return (subject: string, handler: Parameters<EventBus['subscribe']>[1], options?: SubscribeOptions) => {
            onGap = options?.onGap;
            return target.subscribe(subject, handler, options);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const c = await start(privacy, { bus: gappy });
    expect(await c.allowed(TENANT, ALICE, 'training')).toBe(true);
    expect(onGap).toBeDefined();

    let open!: () => void;
    privacy.gate = new Promise((r) => (open = r));
    const inFlight = c.check(TENANT, BOB, 'training');
    onGap!();
    expect(c.cached(TENANT, ALICE, 'training')).toBeUndefined();
    open();
    await inFlight;
    expect(c.stats()).toMatchObject({ entries: 0, gaps: 1 });
    privacy.gate = undefined;
    privacy.set(ALICE, 'training', 'withdrawn', 2);
    expect(await c.check(TENANT, ALICE, 'training')).toMatchObject({ allowed: false, from: 'lookup' });
    await inner.close();
  });

  it('refuses the use while the privacy service cannot be read, and asks again after failureTtlMs', async () => {
    let now = 0;
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'training', 'granted', 1);
    privacy.failing = true;
    const c = await start(privacy, { failureTtlMs: 1_000, now: () => now });
    expect(await c.check(TENANT, ALICE, 'training')).toEqual({ allowed: false, state: undefined, isDefault: false, from: 'unavailable' });
    expect(await c.check(TENANT, ALICE, 'training')).toMatchObject({ from: 'unavailable' });
    expect(privacy.calls).toBe(1);
    expect(errors).toHaveLength(1);
    privacy.failing = false;
    now += 1_000;
    expect(await c.check(TENANT, ALICE, 'training')).toMatchObject({ allowed: true, from: 'lookup' });
    expect(c.stats().lookupFailures).toBe(1);
  });

  it('reports an unreadable event or one whose subject names another user, and carries on', async () => {
    const privacy = new FakePrivacy();
    privacy.set(ALICE, 'training', 'granted', 1);
    const c = await start(privacy);
    expect(await c.allowed(TENANT, ALICE, 'training')).toBe(true);
    await bus.publish(consentChangedSubject(TENANT, ALICE), new Uint8Array([0xff, 0xff]), { dedupeId: 'garbage' });
    await publishChange(bus, BOB, 'training', 'withdrawn', 9, consentChangedSubject(TENANT, ALICE));
    const unknownPurpose = encodeEvent('aimass.v1.ConsentChanged', {
      ...v1.ConsentChanged.fromPartial({ state: v1.ConsentState.CONSENT_STATE_WITHDRAWN, recordSequence: 10 }),
      envelope: newEnvelope({ type: 'aimass.v1.ConsentChanged', tenant: TENANT, userPseudonym: ALICE, producer: 'test' }),
    });
    await bus.publish(consentChangedSubject(TENANT, ALICE), unknownPurpose, { dedupeId: 'no-purpose' });
    await publishChange(bus, ALICE, 'training', 'withdrawn', 2);
    await settle();
    expect(errors.map(String)).toEqual([
      expect.stringMatching(/not a aimass.v1.ConsentChanged/),
      expect.stringMatching(/the envelope and the subject disagree/),
      expect.stringMatching(/not a decision this build knows/),
    ]);
    expect(c.cached(TENANT, ALICE, 'training')?.state).toBe('withdrawn');
  });

  it('holds at most maxEntries users, dropping the oldest', async () => {
    const privacy = new FakePrivacy();
    const c = await start(privacy, { maxEntries: 2 });
    const users = ['c', 'd', 'e'].map((ch) => ch.repeat(32));
    for (const u of users) await c.check(TENANT, u, 'training');
    expect(c.stats().entries).toBe(2);
    expect(c.cached(TENANT, users[0]!, 'training')).toBeUndefined();
    expect(c.cached(TENANT, users[2]!, 'training')).toBeDefined();
  });

  it('refuses settings that would make it useless', async () => {
    const privacy = new FakePrivacy();
    await expect(start(privacy, { ttlMs: 0 })).rejects.toThrow(/ttlMs must be a whole number > 0/);
    cache = undefined;
  });
});
