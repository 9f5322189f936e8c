/**
 * Per-user work scheduling: a short batching window, one run at a time per key, a bound on runs
 * across keys, retries with back-off.
 *
 * - `mark(key)` asks for a run. The first mark of an idle key starts its window; marks inside the
 *   window join it (the window is not extended, so latency stays bounded). A mark while the key
 *   runs asks for one more run after it, a window later.
 * - A run that throws is retried after an exponential back-off with jitter; marks meanwhile join
 *   the retry.
 * - `exclusive(key, fn)` runs `fn` while no run of that key is in progress, and keeps runs of the
 *   key out until it is done (refits take this; they have their own concurrency bound).
 */

export interface KeyedSchedulerOptions {
  /** How long the first mark of an idle key waits for more marks before the run starts. */
  readonly windowMs: number;
  /** Runs in progress at once, across keys. */
  readonly concurrency: number;
  readonly run: (key: string) => Promise<void>;
  /** Back-off after the first failed run of a key; doubles per failure up to `retryMaxMs`. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** Told about every failed run before its retry is scheduled. */
  readonly onError?: ((key: string, error: unknown, attempt: number, retryInMs: number) => void) | undefined;
  /** [0, 1) source for the jitter; Math.random by default. */
  readonly random?: (() => number) | undefined;
}

interface Entry {
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  /** Marked while running: run once more afterwards. */
  dirty: boolean;
  /** Consecutive failed runs. */
  failures: number;
}

export interface SchedulerStats {
  /** Keys waiting for their window, a retry, a slot, or running. */
  readonly scheduled: number;
  readonly running: number;
  /** Keys whose last run failed and that wait for a retry. */
  readonly retrying: number;
}

/** Back-off before retry number `failures` (1-based): doubling from `initialMs`, capped, ±20 % jitter. */
export function retryDelay(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class KeyedScheduler {
  readonly #o: KeyedSchedulerOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #locks = new Map<string, Promise<void>>();
  readonly #waiting: string[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #active = 0;
  #stopped = false;
  #idleWaiters: Array<() => void> = [];

  constructor(options: KeyedSchedulerOptions) {
    if (!(options.concurrency >= 1)) throw new RangeError('concurrency must be >= 1');
    this.#o = options;
  }

  mark(key: string): void {
    if (this.#stopped) return;
    const entry = this.#entries.get(key);
    if (!entry) {
      const fresh: Entry = { timer: undefined, running: false, dirty: false, failures: 0 };
      this.#entries.set(key, fresh);
      this.#arm(key, fresh, this.#o.windowMs);
    } else if (entry.running) {
      entry.dirty = true;
    }
    // Otherwise it already waits for its window, a retry or a slot, and that run covers this mark.
  }

  /** Runs `fn` with the key to itself: no scheduled run of the key overlaps it. */
  exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.#withLock(key, fn);
  }

  stats(): SchedulerStats {
    let retrying = 0;
    for (const e of this.#entries.values()) if (e.failures > 0 && !e.running) retrying++;
    return { scheduled: this.#entries.size, running: this.#active, retrying };
  }

  /** Resolves once nothing is scheduled or running (tests, drains). */
  whenIdle(): Promise<void> {
    if (this.#entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Cancels what waits and waits for the runs in progress. Marks afterwards are ignored. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const [key, entry] of this.#entries) {
      if (entry.timer) clearTimeout(entry.timer);
      if (!entry.running) this.#entries.delete(key);
    }
    this.#waiting.length = 0;
    await Promise.allSettled([...this.#inFlight]);
    this.#entries.clear();
    this.#notifyIdle();
  }

  #arm(key: string, entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.#waiting.push(key);
      this.#pump();
    }, delayMs);
    entry.timer.unref?.();
  }

  #pump(): void {
    while (!this.#stopped && this.#active < this.#o.concurrency && this.#waiting.length > 0) {
      const key = this.#waiting.shift()!;
      const entry = this.#entries.get(key);
      if (entry) this.#start(key, entry);
    }
  }

  #start(key: string, entry: Entry): void {
    this.#active++;
    entry.running = true;
    entry.dirty = false;
    const done = this.#withLock(key, () => this.#o.run(key)).then(
      () => {
        entry.failures = 0;
        return undefined;
      },
      (err: unknown) => {
        entry.failures++;
        const delay = retryDelay(entry.failures, this.#o.retryInitialMs, this.#o.retryMaxMs, this.#o.random);
        try {
          this.#o.onError?.(key, err, entry.failures, delay);
        } catch {
          // An observer must not break scheduling.
        }
        return delay;
      },
    );
    const tracked = done.then((retryIn) => this.#finish(key, entry, retryIn));
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  #finish(key: string, entry: Entry, retryInMs: number | undefined): void {
    this.#active--;
    entry.running = false;
    if (this.#stopped) {
      this.#entries.delete(key);
    } else if (retryInMs !== undefined) {
      this.#arm(key, entry, retryInMs);
    } else if (entry.dirty) {
      entry.dirty = false;
      this.#arm(key, entry, this.#o.windowMs);
    } else {
      this.#entries.delete(key);
    }
    this.#notifyIdle();
    this.#pump();
  }

  #notifyIdle(): void {
    if (this.#entries.size > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  async #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }
}

/** A counting semaphore: at most `limit` holders at once, waiters served in order. */
export class Semaphore {
  #available: number;
  readonly #waiters: Array<() => void> = [];

  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError('limit must be >= 1');
    this.#available = limit;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#available > 0) this.#available--;
    else await new Promise<void>((resolve) => this.#waiters.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#available++;
    }
  }
}
