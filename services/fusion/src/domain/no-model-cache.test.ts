import { describe, expect, it } from 'vitest';
import { NoModelCache } from './no-model-cache.js';

function cache(options: Partial<{ maxEntries: number; ttlMs: number; holdMs: number }> = {}) {
  const clock = { now: 1_000 };
  const c = new NoModelCache({ maxEntries: 100, ttlMs: 60_000, holdMs: 5_000, ...options, now: () => clock.now });
  return { c, clock };
}

describe('NoModelCache', () => {
  it('remembers a NO_MODEL answer per tenant and user until its TTL, which a hit does not extend', () => {
    const { c, clock } = cache({ ttlMs: 2_000 });
    expect(c.has('acme', 'u1')).toBe(false);
    expect(c.remember('acme', 'u1', c.ticket())).toBe(true);
    expect(c.has('acme', 'u1')).toBe(true);
    expect(c.has('globex', 'u1')).toBe(false);
    expect(c.has('acme', 'u2')).toBe(false);
    clock.now += 1_999;
    expect(c.has('acme', 'u1')).toBe(true);
    clock.now += 1;
    expect(c.has('acme', 'u1')).toBe(false);
    // An expired entry is gone, not merely hidden.
    expect(c.stats()).toMatchObject({ entries: 0, hits: 2, remembered: 1 });
  });

  it('drops the least recently used user beyond maxEntries', () => {
    const { c } = cache({ maxEntries: 3 });
    for (const u of ['a', 'b', 'c']) c.remember('t', u, c.ticket());
    expect(c.has('t', 'a')).toBe(true); // a is now the most recent
    c.remember('t', 'd', c.ticket());
    expect(c.has('t', 'b')).toBe(false);
    expect(['a', 'c', 'd'].map((u) => c.has('t', u))).toEqual([true, true, true]);
    expect(c.stats()).toMatchObject({ entries: 3, evictions: 1 });
  });

  it('forget drops one user; clear drops everyone', () => {
    const { c, clock } = cache();
    c.remember('t', 'a', c.ticket());
    c.remember('t', 'b', c.ticket());
    c.forget('t', 'a');
    expect(c.has('t', 'a')).toBe(false);
    expect(c.has('t', 'b')).toBe(true);
    c.clear();
    expect(c.has('t', 'b')).toBe(false);
    // After a clear, answers asked for afterwards are kept again.
    clock.now += 1;
    expect(c.remember('t', 'b', c.ticket())).toBe(true);
    expect(c.stats()).toMatchObject({ entries: 1, invalidations: 1, clears: 1 });
  });

  it('refuses an answer asked for before its user was invalidated (the event overtook the Score answer)', () => {
    const { c, clock } = cache({ holdMs: 50 });
    const ticket = c.ticket();
    c.forget('t', 'a');
    clock.now += 10_000; // long after the hold (the age refuses it too)
    expect(c.remember('t', 'a', ticket)).toBe(false);
    // Another user's invalidation does not refuse this one's answer.
    const other = c.ticket();
    c.forget('t', 'b');
    expect(c.remember('t', 'c', other)).toBe(true);
    expect(c.has('t', 'a')).toBe(false);
  });

  it('refuses an answer whose user was invalidated while the call was out, milliseconds apart', () => {
    const { c, clock } = cache({ holdMs: 1_000 });
    const before = c.ticket();
    clock.now += 5;
    c.forget('t', 'a');
    clock.now += 5;
    expect(c.remember('t', 'a', before)).toBe(false);
    expect(c.stats().refused).toBe(1);
  });

  it('does not cache NO_MODEL for a user for holdMs after an invalidation, even for calls asked for after it', () => {
    const { c, clock } = cache({ holdMs: 1_000 });
    c.forget('t', 'a');
    clock.now += 100;
    // Another personal-model replica may not have applied the announcement yet.
    expect(c.remember('t', 'a', c.ticket())).toBe(false);
    clock.now += 900;
    expect(c.remember('t', 'a', c.ticket())).toBe(true);
    expect(c.has('t', 'a')).toBe(true);
  });

  it('refuses an answer to a call asked for holdMs or longer ago', () => {
    const { c, clock } = cache({ holdMs: 1_000 });
    const slow = c.ticket();
    clock.now += 1_000;
    expect(c.remember('t', 'a', slow)).toBe(false);
    const quick = c.ticket();
    clock.now += 999;
    expect(c.remember('t', 'a', quick)).toBe(true);
  });

  it('refuses answers asked for before a clear (events may have been missed)', () => {
    const { c } = cache();
    const before = c.ticket();
    c.clear();
    expect(c.remember('t', 'a', before)).toBe(false);
    expect(c.remember('t', 'a', c.ticket())).toBe(true);
  });

  it('with more invalidations than it can remember, refuses every answer asked for before the ones it dropped', () => {
    const { c, clock } = cache({ maxEntries: 2, holdMs: 1_000 });
    const before = c.ticket();
    c.forget('t', 'a');
    c.forget('t', 'b');
    c.forget('t', 'c'); // a's invalidation is dropped for room
    clock.now += 1;
    // a's invalidation is no longer held, yet the answer asked for before it is still refused.
    expect(c.remember('t', 'a', before)).toBe(false);
    // An unrelated user's answer asked for before the dropped invalidation is refused too (conservative).
    expect(c.remember('t', 'z', before)).toBe(false);
    // One asked for after the dropped invalidation is kept (z was never invalidated).
    expect(c.remember('t', 'z', c.ticket())).toBe(true);
  });

  it('lets an invalidated user be cached again once the hold is over', () => {
    const { c, clock } = cache({ maxEntries: 2_000, holdMs: 100 });
    for (let i = 0; i < 1_000; i++) {
      c.forget('t', `u${i}`);
      clock.now += 1;
    }
    expect(c.remember('t', 'u999', c.ticket())).toBe(false);
    clock.now += 100;
    expect(c.remember('t', 'u999', c.ticket())).toBe(true);
    expect(c.remember('t', 'u0', c.ticket())).toBe(true);
  });

  it('rejects options that are not whole numbers > 0', () => {
    expect(() => new NoModelCache({ maxEntries: 0, ttlMs: 1, holdMs: 1 })).toThrow(/maxEntries must be a whole number > 0, got 0/);
    expect(() => new NoModelCache({ maxEntries: 1, ttlMs: 1.5, holdMs: 1 })).toThrow(/ttlMs/);
    expect(() => new NoModelCache({ maxEntries: 1, ttlMs: 1, holdMs: -1 })).toThrow(/holdMs/);
  });
});
