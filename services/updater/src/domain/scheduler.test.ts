import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyedScheduler, Semaphore, retryDelay } from './scheduler.js';

/** Settles promise chains between fake timer steps. */
const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function deferred() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('KeyedScheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('batches the marks of one key inside its window into one run, without extending the window', async () => {
    const runs: string[] = [];
    const s = new KeyedScheduler({ windowMs: 20, concurrency: 4, retryInitialMs: 100, retryMaxMs: 1000, run: async (k) => void runs.push(k) });
    s.mark('a');
    await vi.advanceTimersByTimeAsync(15);
    s.mark('a');
    s.mark('b');
    expect(runs).toEqual([]);
    await vi.advanceTimersByTimeAsync(5);
    expect(runs).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(15);
    expect(runs).toEqual(['a', 'b']);
    await s.whenIdle();
    expect(s.stats()).toEqual({ scheduled: 0, running: 0, retrying: 0 });
  });

  it('never runs one key twice at once; a mark during a run asks for one more run a window later', async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const s = new KeyedScheduler({
      windowMs: 10,
      concurrency: 4,
      retryInitialMs: 100,
      retryMaxMs: 1000,
      run: async () => {
        runs++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (runs === 1) await gate.promise;
        running--;
      },
    });
    s.mark('a');
    await vi.advanceTimersByTimeAsync(10);
    expect(runs).toBe(1);
    s.mark('a');
    s.mark('a');
    await vi.advanceTimersByTimeAsync(50);
    expect(runs).toBe(1);
    gate.resolve();
    await flush();
    await vi.advanceTimersByTimeAsync(10);
    expect(runs).toBe(2);
    expect(maxRunning).toBe(1);
    await s.whenIdle();
  });

  it('bounds runs across keys', async () => {
    const gates = new Map<string, ReturnType<typeof deferred>>();
    let running = 0;
    let maxRunning = 0;
    const s = new KeyedScheduler({
      windowMs: 0,
      concurrency: 2,
      retryInitialMs: 100,
      retryMaxMs: 1000,
      run: async (k) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const g = deferred();
        gates.set(k, g);
        await g.promise;
        running--;
      },
    });
    for (const k of ['a', 'b', 'c', 'd']) s.mark(k);
    await vi.advanceTimersByTimeAsync(1);
    expect(running).toBe(2);
    for (let i = 0; i < 4; i++) {
      for (const g of gates.values()) g.resolve();
      await flush();
      await vi.advanceTimersByTimeAsync(1);
    }
    await s.whenIdle();
    expect(maxRunning).toBe(2);
    expect(gates.size).toBe(4);
  });

  it('retries a failed run with a doubling back-off and reports each failure', async () => {
    const times: number[] = [];
    const errors: Array<[number, number]> = [];
    let calls = 0;
    const s = new KeyedScheduler({
      windowMs: 0,
      concurrency: 1,
      retryInitialMs: 100,
      retryMaxMs: 250,
      random: () => 0.5,
      run: async () => {
        times.push(Date.now());
        if (++calls < 4) throw new Error('down');
      },
      onError: (_k, _e, attempt, retryIn) => errors.push([attempt, retryIn]),
    });
    const t0 = Date.now();
    s.mark('a');
    await vi.advanceTimersByTimeAsync(1_000);
    await s.whenIdle();
    expect(calls).toBe(4);
    expect(errors).toEqual([
      [1, 100],
      [2, 200],
      [3, 250],
    ]);
    expect(times.map((t) => t - t0)).toEqual([0, 100, 300, 550]);
  });

  it('exclusive work keeps the key\'s runs out until it is done', async () => {
    const order: string[] = [];
    const gate = deferred();
    const s = new KeyedScheduler({ windowMs: 0, concurrency: 2, retryInitialMs: 100, retryMaxMs: 1000, run: async (k) => void order.push(`run ${k}`) });
    const held = s.exclusive('a', async () => {
      order.push('refit a');
      await gate.promise;
      order.push('refit a done');
      return 42;
    });
    s.mark('a');
    s.mark('b');
    await vi.advanceTimersByTimeAsync(5);
    expect(order).toEqual(['refit a', 'run b']);
    gate.resolve();
    expect(await held).toBe(42);
    await flush();
    expect(order).toEqual(['refit a', 'run b', 'refit a done', 'run a']);
  });

  it('stop cancels what waits and waits for what runs; later marks are ignored', async () => {
    const gate = deferred();
    let runs = 0;
    const s = new KeyedScheduler({
      windowMs: 10,
      concurrency: 2,
      retryInitialMs: 100,
      retryMaxMs: 1000,
      run: async (k) => {
        runs++;
        if (k === 'a') await gate.promise;
      },
    });
    s.mark('a');
    await vi.advanceTimersByTimeAsync(10);
    s.mark('b');
    const stopped = s.stop();
    let done = false;
    void stopped.then(() => (done = true));
    await flush();
    expect(done).toBe(false);
    gate.resolve();
    await stopped;
    s.mark('c');
    await vi.advanceTimersByTimeAsync(100);
    expect(runs).toBe(1);
  });
});

describe('retryDelay', () => {
  it('doubles up to the cap with ±20 % jitter', () => {
    expect(retryDelay(1, 100, 1000, () => 0.5)).toBe(100);
    expect(retryDelay(3, 100, 1000, () => 0.5)).toBe(400);
    expect(retryDelay(10, 100, 1000, () => 0.5)).toBe(1000);
    expect(retryDelay(1, 100, 1000, () => 0)).toBe(80);
    expect(retryDelay(1, 100, 1000, () => 0.999999)).toBe(120);
  });
});

describe('Semaphore', () => {
  it('admits at most its limit, in order', async () => {
    const sem = new Semaphore(2);
    let inside = 0;
    let max = 0;
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        sem.run(async () => {
          inside++;
          max = Math.max(max, inside);
          await new Promise((r) => setTimeout(r, 1));
          order.push(i);
          inside--;
        }),
      ),
    );
    expect(max).toBe(2);
    expect(order).toEqual([1, 2, 3, 4, 5]);
  });
});
