import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Coalescer, type CoalescerOptions, type SharedCall } from './coalescer.js';

class DeadlineError extends Error {}
class CancelledError extends Error {}
class BadItemError extends Error {}

interface Run {
  readonly context: string;
  readonly items: string[];
  readonly call: SharedCall;
}

/**
 * A coalescer over a downstream that upper-cases its items after `delayMs`, recording every call;
 * an item 'fail' fails the whole call, an item 'bad' fails it with an isolating error.
 */
function setup(options: Partial<CoalescerOptions<string, string, string>> & { delayMs?: number } = {}) {
  const runs: Run[] = [];
  const coalescer = new Coalescer<string, string, string>({
    maxItems: 100,
    maxDelayMs: 0,
    deadlineError: () => new DeadlineError('deadline'),
    cancelledError: () => new CancelledError('cancelled'),
    isolate: (err) => err instanceof BadItemError,
    run: async (context, items, call) => {
      runs.push({ context, items, call });
      if (options.delayMs) await sleep(options.delayMs);
      if (items.includes('fail')) throw new Error(`down for ${items.length} items`);
      if (items.includes('bad')) throw new BadItemError('bad item');
      return items.map((i) => `${context}:${i.toUpperCase()}`);
    },
    ...options,
  });
  return { coalescer, runs };
}

const far = () => Date.now() + 10_000;

describe('Coalescer', () => {
  it('sends the members of one event-loop turn and one key as one call, and hands each its own results', async () => {
    const { coalescer, runs } = setup();
    const results = await Promise.all([
      coalescer.submit('k', 'acme', ['a'], { deadline: far() }),
      coalescer.submit('k', 'acme', ['b', 'c'], { deadline: far() }),
      coalescer.submit('k', 'acme', ['d'], { deadline: far() }),
    ]);
    expect(results).toEqual([['acme:A'], ['acme:B', 'acme:C'], ['acme:D']]);
    expect(runs.map((r) => r.items)).toEqual([['a', 'b', 'c', 'd']]);
    expect(coalescer.stats()).toMatchObject({ calls: 1, members: 3, items: 4, largestCall: 3 });
  });

  it('keeps keys apart (each call with its own context) and later turns in later calls', async () => {
    const { coalescer, runs } = setup();
    const first = await Promise.all([
      coalescer.submit('acme', 'acme', ['a'], { deadline: far() }),
      coalescer.submit('globex', 'globex', ['b'], { deadline: far() }),
      coalescer.submit('acme', 'acme', ['c'], { deadline: far() }),
    ]);
    expect(first).toEqual([['acme:A'], ['globex:B'], ['acme:C']]);
    const a = coalescer.submit('acme', 'acme', ['d'], { deadline: far() });
    await new Promise((r) => setImmediate(r));
    const b = coalescer.submit('acme', 'acme', ['e'], { deadline: far() });
    expect(await Promise.all([a, b])).toEqual([['acme:D'], ['acme:E']]);
    expect(runs.map((r) => [r.context, r.items])).toEqual([
      ['acme', ['a', 'c']],
      ['globex', ['b']],
      ['acme', ['d']],
      ['acme', ['e']],
    ]);
  });

  it('splits at maxItems without splitting a member; a member larger than the max goes alone', async () => {
    const { coalescer, runs } = setup({ maxItems: 4 });
    const singles = Array.from({ length: 10 }, (_, i) => coalescer.submit('k', 'c', [`s${i}`], { deadline: far() }));
    expect((await Promise.all(singles)).flat()).toEqual(Array.from({ length: 10 }, (_, i) => `c:S${i}`));
    expect(runs.map((r) => r.items.length)).toEqual([4, 4, 2]);

    runs.length = 0;
    const mixed = await Promise.all([
      coalescer.submit('k', 'c', ['a', 'b', 'c'], { deadline: far() }),
      coalescer.submit('k', 'c', ['d', 'e'], { deadline: far() }), // does not fit the 1 left: a new call
      coalescer.submit('k', 'c', ['f', 'g', 'h', 'i', 'j', 'k'], { deadline: far() }), // larger than 4: alone
      coalescer.submit('k', 'c', ['l'], { deadline: far() }),
    ]);
    expect(mixed).toEqual([['c:A', 'c:B', 'c:C'], ['c:D', 'c:E'], ['c:F', 'c:G', 'c:H', 'c:I', 'c:J', 'c:K'], ['c:L']]);
    expect(runs.map((r) => r.items)).toEqual([['a', 'b', 'c'], ['d', 'e'], ['f', 'g', 'h', 'i', 'j', 'k'], ['l']]);
  });

  it('splits by weight: a call stays under maxWeight, a heavier member goes alone', async () => {
    const { coalescer, runs } = setup({ maxWeight: 10, weightOf: (item) => item.length });
    const results = await Promise.all(['aaaa', 'bbbb', 'cccc', 'dddddddddddd', 'ee'].map((i) => coalescer.submit('k', 'c', [i], { deadline: far() })));
    expect(results.flat()).toEqual(['c:AAAA', 'c:BBBB', 'c:CCCC', 'c:DDDDDDDDDDDD', 'c:EE']);
    expect(runs.map((r) => r.items)).toEqual([['aaaa', 'bbbb'], ['cccc'], ['dddddddddddd'], ['ee']]);
  });

  it('with maxDelayMs, waits that long for members of later turns; a full call goes at once', async () => {
    const { coalescer, runs } = setup({ maxDelayMs: 200, maxItems: 3 });
    const started = Date.now();
    const a = coalescer.submit('k', 'c', ['a'], { deadline: far() });
    await sleep(10);
    const b = coalescer.submit('k', 'c', ['b'], { deadline: far() });
    expect(await Promise.all([a, b])).toEqual([['c:A'], ['c:B']]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(195);
    expect(runs.map((r) => r.items)).toEqual([['a', 'b']]);

    runs.length = 0;
    const full = Date.now();
    await Promise.all(['x', 'y', 'z'].map((i) => coalescer.submit('k', 'c', [i], { deadline: far() })));
    expect(Date.now() - full).toBeLessThan(150);
    expect(runs.map((r) => r.items)).toEqual([['x', 'y', 'z']]);
  });

  it('runs the shared call to the latest member deadline; a member whose own deadline passes leaves alone', async () => {
    const { coalescer, runs } = setup({ delayMs: 150 });
    const started = Date.now();
    const shortDeadline = started + 40;
    const longDeadline = started + 5_000;
    const short = coalescer.submit('k', 'c', ['a'], { deadline: shortDeadline });
    const long = coalescer.submit('k', 'c', ['b'], { deadline: longDeadline });
    const shortError = await short.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(shortError).toBeInstanceOf(DeadlineError);
    expect(Date.now() - started).toBeLessThan(140);
    expect(await long).toEqual(['c:B']);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.items).toEqual(['a', 'b']);
    expect(runs[0]!.call.deadline).toBe(longDeadline);
    expect(runs[0]!.call.signal.aborted).toBe(false);
    expect(coalescer.stats().abandoned).toBe(1);
  });

  it('has no deadline for the shared call when a member has none', async () => {
    const { coalescer, runs } = setup();
    await Promise.all([coalescer.submit('k', 'c', ['a'], { deadline: far() }), coalescer.submit('k', 'c', ['b'], { deadline: undefined })]);
    expect(runs[0]!.call.deadline).toBeUndefined();
  });

  it('a cancelled member leaves alone; the shared call is cancelled only when every member has gone', async () => {
    const { coalescer, runs } = setup({ delayMs: 100 });
    const ca = new AbortController();
    const cb = new AbortController();
    const a = coalescer.submit('k', 'c', ['a'], { deadline: far(), signal: ca.signal });
    const b = coalescer.submit('k', 'c', ['b'], { deadline: far(), signal: cb.signal });
    await sleep(20);
    ca.abort();
    await expect(a).rejects.toBeInstanceOf(CancelledError);
    expect(runs[0]!.call.signal.aborted).toBe(false);
    expect(await b).toEqual(['c:B']);

    const cc = new AbortController();
    const cd = new AbortController();
    const c = coalescer.submit('k', 'c', ['c'], { deadline: far(), signal: cc.signal });
    const d = coalescer.submit('k', 'c', ['d'], { deadline: far(), signal: cd.signal });
    await sleep(20);
    cc.abort();
    expect(runs[1]!.call.signal.aborted).toBe(false);
    cd.abort();
    expect(runs[1]!.call.signal.aborted).toBe(true);
    await expect(c).rejects.toBeInstanceOf(CancelledError);
    await expect(d).rejects.toBeInstanceOf(CancelledError);
  });

  it('a member that leaves before its call is sent is not sent; one already cancelled or late is refused at once', async () => {
    const { coalescer, runs } = setup({ maxDelayMs: 40 });
    const cancel = new AbortController();
    const gone = coalescer.submit('k', 'c', ['gone'], { deadline: far(), signal: cancel.signal });
    const late = coalescer.submit('k', 'c', ['late'], { deadline: Date.now() + 10 });
    const stays = coalescer.submit('k', 'c', ['stays'], { deadline: far() });
    cancel.abort();
    await expect(gone).rejects.toBeInstanceOf(CancelledError);
    await expect(late).rejects.toBeInstanceOf(DeadlineError);
    expect(await stays).toEqual(['c:STAYS']);
    expect(runs.map((r) => r.items)).toEqual([['stays']]);

    const aborted = new AbortController();
    aborted.abort();
    await expect(coalescer.submit('k', 'c', ['x'], { deadline: far(), signal: aborted.signal })).rejects.toBeInstanceOf(CancelledError);
    await expect(coalescer.submit('k', 'c', ['y'], { deadline: Date.now() - 1 })).rejects.toBeInstanceOf(DeadlineError);
    expect(await coalescer.submit('k', 'c', [], { deadline: far() })).toEqual([]);
    expect(runs).toHaveLength(1);
  });

  it('fails every member of a failed call with its error', async () => {
    const { coalescer } = setup();
    const outcomes = await Promise.allSettled([
      coalescer.submit('k', 'c', ['a'], { deadline: far() }),
      coalescer.submit('k', 'c', ['fail'], { deadline: far() }),
      coalescer.submit('k', 'c', ['b', 'c'], { deadline: far() }),
    ]);
    const reasons = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'ok'));
    expect(reasons).toEqual(['down for 4 items', 'down for 4 items', 'down for 4 items']);
  });

  it('sends the members of a call failed by an isolating error again alone: only the culprit fails', async () => {
    const { coalescer, runs } = setup();
    const outcomes = await Promise.allSettled([
      coalescer.submit('k', 'c', ['a'], { deadline: far() }),
      coalescer.submit('k', 'c', ['bad'], { deadline: far() }),
      coalescer.submit('k', 'c', ['b', 'c'], { deadline: far() }),
    ]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: ['c:A'] });
    expect(outcomes[1]!.status).toBe('rejected');
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(BadItemError);
    expect(outcomes[2]).toEqual({ status: 'fulfilled', value: ['c:B', 'c:C'] });
    expect(runs.map((r) => r.items)).toEqual([['a', 'bad', 'b', 'c'], ['a'], ['bad'], ['b', 'c']]);
    expect(coalescer.stats()).toMatchObject({ isolated: 3, calls: 4 });
  });

  it('fails the members when the downstream answers the wrong number of results', async () => {
    const coalescer = new Coalescer<string, string, string>({
      maxItems: 10,
      maxDelayMs: 0,
      deadlineError: () => new DeadlineError('deadline'),
      cancelledError: () => new CancelledError('cancelled'),
      run: async (_c, items) => items.slice(1),
    });
    const outcomes = await Promise.allSettled([coalescer.submit('k', 'c', ['a'], { deadline: far() }), coalescer.submit('k', 'c', ['b'], { deadline: far() })]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(((outcomes[0] as PromiseRejectedResult).reason as Error).message).toMatch(/1 results for 2 items/);
  });

  it('refuses a bad configuration', () => {
    const base = { maxDelayMs: 0, deadlineError: () => new Error(), cancelledError: () => new Error(), run: async () => [] };
    expect(() => new Coalescer({ ...base, maxItems: 0 })).toThrow(/maxItems/);
    expect(() => new Coalescer({ ...base, maxItems: 1, maxDelayMs: -1 })).toThrow(/maxDelayMs/);
  });
});
