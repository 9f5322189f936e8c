import { CancelledError, DeadlineExceededError, ResourceExhaustedError, isDomainError } from '@aimass/platform';

export interface BatcherOptions {
  /** For error messages, e.g. `general:3`. */
  name: string;
  /** Rows one batch may hold (1 runs every request alone). */
  maxBatchRows: number;
  /** How long the oldest queued request may wait for a fuller batch while a run slot is free. */
  maxQueueDelayMs: number;
  /** Batch sizes worth dispatching at once without waiting for the delay (Triton's preferred_batch_size). */
  preferredBatchRows?: readonly number[] | undefined;
  /** Rows the queue holds at most; a request that does not fit is refused with RESOURCE_EXHAUSTED. */
  maxQueueRows: number;
  /** Batches running at the same time. */
  maxInFlight: number;
  /** Clock in ms (injected by tests). */
  now?: (() => number) | undefined;
}

export interface BatchItem<T> {
  /** Rows this request contributes to a batch. */
  rows: number;
  /** Only items with equal keys are batched together (equal non-batch dims). */
  key: string;
  payload: T;
  /** Epoch ms after which the request is dropped instead of run. */
  deadline?: number | undefined;
  /** Aborting it removes the request from the queue (the call was cancelled or timed out). */
  signal?: AbortSignal | undefined;
}

/** Runs one batch and returns one result per item, in order. */
export type BatchExecutor<T, R> = (payloads: readonly T[], rows: readonly number[]) => Promise<readonly R[]>;

export interface BatcherStats {
  submitted: number;
  /** Batches handed to the executor. */
  batches: number;
  /** Rows handed to the executor. */
  rows: number;
  /** Largest batch run, in rows. */
  largestBatch: number;
  rejectedQueueFull: number;
  /** Dropped from the queue because their deadline passed before a run slot was free. */
  expired: number;
  /** Removed from the queue because their call was cancelled. */
  cancelled: number;
  queuedRows: number;
  inFlight: number;
}

interface Entry<T, R> {
  item: BatchItem<T>;
  enqueuedAt: number;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
  onAbort: (() => void) | undefined;
}

/**
 * Triton-style dynamic batcher for one model version. Requests queue in arrival order; a batch is
 * formed from the oldest request and the later ones with the same shape key, up to `maxBatchRows`,
 * and dispatched when a run slot is free and either the batch is full, it reached a preferred size,
 * or the oldest request has waited `maxQueueDelayMs`. While every slot is busy the queue fills, so
 * under load batches grow by themselves without any delay. Checks are scheduled with setImmediate,
 * so requests that arrive in the same event-loop turn share a batch even with a zero delay.
 */
export class DynamicBatcher<T, R> {
  private readonly queue: Entry<T, R>[] = [];
  private readonly now: () => number;
  private readonly preferred: ReadonlySet<number>;
  private queued = 0;
  private running = 0;
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closedWith: unknown;
  private idleWaiters: Array<() => void> = [];
  private readonly counters = { submitted: 0, batches: 0, rows: 0, largestBatch: 0, rejectedQueueFull: 0, expired: 0, cancelled: 0 };

  constructor(
    private readonly options: BatcherOptions,
    private readonly execute: BatchExecutor<T, R>,
  ) {
    if (!(options.maxBatchRows >= 1)) throw new RangeError('maxBatchRows must be at least 1');
    if (!(options.maxInFlight >= 1)) throw new RangeError('maxInFlight must be at least 1');
    this.now = options.now ?? (() => Date.now());
    this.preferred = new Set(options.preferredBatchRows ?? []);
  }

  submit(item: BatchItem<T>): Promise<R> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (item.rows < 1 || item.rows > this.options.maxBatchRows) {
      return Promise.reject(new RangeError(`a request of ${item.rows} rows cannot be batched (max ${this.options.maxBatchRows})`));
    }
    this.counters.submitted++;
    if (item.signal?.aborted) return Promise.reject(abortError(item.signal));
    if (this.queued + item.rows > this.options.maxQueueRows) {
      this.counters.rejectedQueueFull++;
      return Promise.reject(
        new ResourceExhaustedError(`the queue of model ${this.options.name} is full (${this.queued} of ${this.options.maxQueueRows} rows): retry later`, {
          retryAfterMs: Math.max(1, Math.ceil(this.options.maxQueueDelayMs)),
        }),
      );
    }
    return new Promise<R>((resolve, reject) => {
      const entry: Entry<T, R> = { item, enqueuedAt: this.now(), resolve, reject, onAbort: undefined };
      if (item.signal) {
        const signal = item.signal;
        entry.onAbort = () => {
          if (this.remove(entry)) {
            this.counters.cancelled++;
            reject(abortError(signal));
          }
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.queue.push(entry);
      this.queued += item.rows;
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or running (new submissions keep it waiting). */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    this.schedule();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new requests and fails the queued ones with `err`; running batches finish. */
  close(err: unknown): void {
    this.closedWith = err;
    for (const entry of this.queue.splice(0)) {
      this.detach(entry);
      entry.reject(err);
    }
    this.queued = 0;
    this.clearTimers();
    this.checkIdle();
  }

  stats(): BatcherStats {
    return { ...this.counters, queuedRows: this.queued, inFlight: this.running };
  }

  private schedule(): void {
    this.immediate ??= setImmediate(() => {
      this.immediate = undefined;
      this.pump();
    });
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  private remove(entry: Entry<T, R>): boolean {
    const i = this.queue.indexOf(entry);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    this.queued -= entry.item.rows;
    this.checkIdle();
    return true;
  }

  private detach(entry: Entry<T, R>): void {
    if (entry.onAbort) entry.item.signal?.removeEventListener('abort', entry.onAbort);
  }

  private dropExpired(now: number): void {
    for (let i = 0; i < this.queue.length; ) {
      const entry = this.queue[i]!;
      if (entry.item.deadline !== undefined && entry.item.deadline <= now) {
        this.queue.splice(i, 1);
        this.queued -= entry.item.rows;
        this.detach(entry);
        this.counters.expired++;
        entry.reject(new DeadlineExceededError('deadline exceeded while queued for a batch'));
      } else {
        i++;
      }
    }
  }

  private pump(): void {
    const now = this.now();
    this.dropExpired(now);
    while (this.running < this.options.maxInFlight && this.queue.length > 0) {
      const head = this.queue[0]!;
      // One pass over the queue (it can hold thousands of entries under load): count what fits,
      // then take it in a second pass only when the batch is dispatched.
      let rows = 0;
      let count = 0;
      let full = false;
      let mixed = false;
      for (let i = 0; i < this.queue.length; i++) {
        const e = this.queue[i]!;
        if (e.item.key !== head.item.key) {
          mixed = true;
          continue;
        }
        if (rows + e.item.rows > this.options.maxBatchRows) {
          full = true;
          break;
        }
        rows += e.item.rows;
        count++;
      }
      full ||= rows >= this.options.maxBatchRows;
      const dueAt = head.enqueuedAt + this.options.maxQueueDelayMs;
      if (!full && !this.preferred.has(rows) && now < dueAt) {
        this.armTimer(dueAt - now);
        break;
      }
      this.queued -= rows;
      this.run(this.take(head.item.key, count, mixed), rows);
    }
    this.checkIdle();
  }

  /** Removes and returns the first `count` queued entries with `key`, keeping the others in order. */
  private take(key: string, count: number, mixed: boolean): Entry<T, R>[] {
    // Common case: every queued request has the same shape, so the batch is a prefix.
    if (!mixed) return this.queue.splice(0, count);
    const batch: Entry<T, R>[] = [];
    let w = 0;
    for (let i = 0; i < this.queue.length; i++) {
      const e = this.queue[i]!;
      if (batch.length < count && e.item.key === key) batch.push(e);
      else this.queue[w++] = e;
    }
    this.queue.length = w;
    return batch;
  }

  private armTimer(ms: number): void {
    const at = this.now() + ms;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, ms));
  }

  private run(batch: Entry<T, R>[], rows: number): void {
    this.running++;
    this.counters.batches++;
    this.counters.rows += rows;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, rows);
    for (const entry of batch) this.detach(entry);
    const payloads = batch.map((e) => e.item.payload);
    const rowCounts = batch.map((e) => e.item.rows);
    // The next batch is dispatched before this one's callers are answered, so the executor (a
    // worker thread) computes while this thread encodes and sends the responses.
    const release = () => {
      this.running--;
      this.pump();
    };
    new Promise<readonly R[]>((resolve) => resolve(this.execute(payloads, rowCounts))).then(
      (results) => {
        release();
        if (results.length !== batch.length) {
          const err = new Error(`executor returned ${results.length} results for ${batch.length} requests`);
          for (const entry of batch) entry.reject(err);
          return;
        }
        for (const [i, entry] of batch.entries()) entry.resolve(results[i]!);
      },
      (err: unknown) => {
        release();
        for (const entry of batch) entry.reject(err);
      },
    );
  }

  private checkIdle(): void {
    if (this.queue.length > 0 || this.running > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function abortError(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason;
  if (isDomainError(reason)) return reason;
  return new CancelledError('call cancelled while queued for a batch');
}
