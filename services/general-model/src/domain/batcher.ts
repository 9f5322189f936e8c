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
  /**
   * Rows the queue holds at most, shared fairly between tenants: a tenant may hold at most
   * max(maxQueueRows / tenants with queued requests, `minTenantShareRows`); a request beyond its
   * tenant's share, or that does not fit, is refused with RESOURCE_EXHAUSTED.
   */
  maxQueueRows: number;
  /** The least share of the queue a tenant is promised however many tenants queue (default: maxBatchRows, at most maxQueueRows). */
  minTenantShareRows?: number | undefined;
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
  /** Whose request it is: the queue and every batch are shared fairly between tenants ('' when unknown). */
  tenant?: string | undefined;
}

/**
 * Runs one batch and returns one result per item, in order. `waitedMs`: how long each item waited
 * in the queue until this dispatch (performance.now resolution, for statistics).
 */
/** What an executor returns for a request of the batch that failed on its own: that request's caller gets `error`. */
export class ItemFailure {
  constructor(readonly error: unknown) {}
}

export type BatchExecutor<T, R> = (
  payloads: readonly T[],
  rows: readonly number[],
  waitedMs: readonly number[],
) => Promise<readonly (R | ItemFailure)[]>;

export interface BatcherStats {
  submitted: number;
  /** Batches handed to the executor. */
  batches: number;
  /** Rows handed to the executor. */
  rows: number;
  /** Largest batch run, in rows. */
  largestBatch: number;
  /** Refused for want of room (the whole queue, or the tenant's share of it). */
  rejectedQueueFull: number;
  /** Of those, refused because the tenant held its share of the queue while others queued too. */
  rejectedTenantShare: number;
  /** Queued requests of a tenant over its share, dropped (RESOURCE_EXHAUSTED) to admit another tenant's request within its share. */
  pushedOut: number;
  /** Dropped from the queue because their deadline passed before a run slot was free. */
  expired: number;
  /** Removed from the queue because their call was cancelled. */
  cancelled: number;
  queuedRows: number;
  /** Tenants with queued requests. */
  queuedTenants: number;
  inFlight: number;
}

interface Entry<T, R> {
  item: BatchItem<T>;
  tenant: string;
  enqueuedAt: number;
  /** performance.now() at submission: the queue wait reported to the executor (the injected clock may be coarse or fake). */
  queuedAt: number;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
  onAbort: (() => void) | undefined;
}

/** One tenant's queued requests, in arrival order. */
interface TenantQueue<T, R> {
  readonly tenant: string;
  readonly entries: Entry<T, R>[];
  rows: number;
}

/** A batch that could be dispatched now: the picks per tenant (ascending indices), in batch order. */
interface Candidate<T, R> {
  readonly start: number;
  readonly picks: Array<{ queue: TenantQueue<T, R>; index: number }>;
  readonly rows: number;
  readonly dueAt: number;
  readonly ready: boolean;
}

const tenantLabel = (tenant: string) => (tenant === '' ? 'requests without a tenant' : `tenant "${tenant}"`);

/**
 * Triton-style dynamic batcher for one model version, shared fairly between tenants. Each tenant's
 * requests queue in arrival order; a batch starts with the head of the tenant whose turn it is and
 * takes requests with the same shape key round-robin across tenants (one per tenant per round, in
 * each tenant's arrival order), up to `maxBatchRows`; the next batch starts with the next tenant.
 * It is dispatched when a run slot is free and either the batch is full, it reached a preferred
 * size, or its oldest request has waited `maxQueueDelayMs`. While every slot is busy the queue
 * fills, so under load batches grow by themselves without any delay. Checks are scheduled with
 * setImmediate, so requests that arrive in the same event-loop turn share a batch even with a zero
 * delay. One tenant's flood therefore neither fills the queue (it is refused beyond its share) nor
 * the batches (every tenant with queued requests gets an equal number of places in each).
 */
export class DynamicBatcher<T, R> {
  private readonly tenants = new Map<string, TenantQueue<T, R>>();
  /** Tenants with queued requests, in turn order; `cursor` is whose turn it is. */
  private readonly ring: TenantQueue<T, R>[] = [];
  private cursor = 0;
  private readonly now: () => number;
  private readonly preferred: ReadonlySet<number>;
  private readonly minShare: number;
  private queued = 0;
  private entries = 0;
  private running = 0;
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closedWith: unknown;
  private idleWaiters: Array<() => void> = [];
  private readonly counters = {
    submitted: 0,
    batches: 0,
    rows: 0,
    largestBatch: 0,
    rejectedQueueFull: 0,
    rejectedTenantShare: 0,
    pushedOut: 0,
    expired: 0,
    cancelled: 0,
  };

  constructor(
    private readonly options: BatcherOptions,
    private readonly execute: BatchExecutor<T, R>,
  ) {
    if (!(options.maxBatchRows >= 1)) throw new RangeError('maxBatchRows must be at least 1');
    if (!(options.maxInFlight >= 1)) throw new RangeError('maxInFlight must be at least 1');
    this.now = options.now ?? (() => Date.now());
    this.preferred = new Set(options.preferredBatchRows ?? []);
    this.minShare = Math.min(options.maxQueueRows, options.minTenantShareRows ?? options.maxBatchRows);
  }

  submit(item: BatchItem<T>): Promise<R> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (item.rows < 1 || item.rows > this.options.maxBatchRows) {
      return Promise.reject(new RangeError(`a request of ${item.rows} rows cannot be batched (max ${this.options.maxBatchRows})`));
    }
    this.counters.submitted++;
    if (item.signal?.aborted) return Promise.reject(abortError(item.signal));
    const tenant = item.tenant ?? '';
    const refusal = this.admit(tenant, item.rows);
    if (refusal) return Promise.reject(refusal);
    return new Promise<R>((resolve, reject) => {
      const entry: Entry<T, R> = { item, tenant, enqueuedAt: this.now(), queuedAt: performance.now(), resolve, reject, onAbort: undefined };
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
      let queue = this.tenants.get(tenant);
      if (!queue) {
        queue = { tenant, entries: [], rows: 0 };
        this.tenants.set(tenant, queue);
        // A newcomer waits a whole turn at most: it goes just before the tenant whose turn it is.
        this.ring.splice(this.cursor, 0, queue);
        this.cursor = (this.cursor + 1) % this.ring.length;
      }
      queue.entries.push(entry);
      queue.rows += item.rows;
      this.queued += item.rows;
      this.entries++;
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or running (new submissions keep it waiting). */
  drain(): Promise<void> {
    if (this.entries === 0 && this.running === 0) return Promise.resolve();
    this.schedule();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new requests and fails the queued ones with `err`; running batches finish. */
  close(err: unknown): void {
    this.closedWith = err;
    for (const queue of this.ring.splice(0)) {
      for (const entry of queue.entries) {
        this.detach(entry);
        entry.reject(err);
      }
    }
    this.tenants.clear();
    this.cursor = 0;
    this.queued = 0;
    this.entries = 0;
    this.clearTimers();
    this.checkIdle();
  }

  stats(): BatcherStats {
    return { ...this.counters, queuedRows: this.queued, queuedTenants: this.ring.length, inFlight: this.running };
  }

  /** Undefined when `rows` of `tenant` may queue (after pushing out others' excess if need be), else the refusal. */
  private admit(tenant: string, rows: number): ResourceExhaustedError | undefined {
    const max = this.options.maxQueueRows;
    const retryAfterMs = Math.max(1, Math.ceil(this.options.maxQueueDelayMs));
    const own = this.tenants.get(tenant);
    const active = this.ring.length + (own ? 0 : 1);
    const share = this.shareOf(active);
    const held = own?.rows ?? 0;
    if (active > 1 && held + rows > share) {
      this.counters.rejectedQueueFull++;
      this.counters.rejectedTenantShare++;
      return new ResourceExhaustedError(
        `queue share exceeded for ${tenantLabel(tenant)}: ${held} rows queued of a ${share}-row share of the queue of model ${this.options.name} (${max} rows shared by ${active} tenants): retry later`,
        { retryAfterMs },
      );
    }
    const need = this.queued + rows - max;
    if (need <= 0) return undefined;
    // The request is within its tenant's share but the queue is full: others hold more than theirs.
    // Their newest requests make room, so a flood cannot lock out a tenant that queues little.
    let excess = 0;
    for (const q of this.ring) if (q !== own) excess += Math.max(0, q.rows - share);
    if (excess < need) {
      this.counters.rejectedQueueFull++;
      return new ResourceExhaustedError(`the queue of model ${this.options.name} is full (${this.queued} of ${max} rows): retry later`, { retryAfterMs });
    }
    let freed = 0;
    while (freed < need) {
      let victim: TenantQueue<T, R> | undefined;
      for (const q of this.ring) if (q !== own && q.rows > share && (!victim || q.rows > victim.rows)) victim = q;
      if (!victim) break;
      const entry = victim.entries[victim.entries.length - 1]!;
      const victimRows = victim.rows;
      freed += entry.item.rows;
      this.remove(entry);
      this.detach(entry);
      this.counters.pushedOut++;
      entry.reject(
        new ResourceExhaustedError(
          `queue share exceeded for ${tenantLabel(victim.tenant)}: ${victimRows} rows queued of a ${share}-row share of the queue of model ${this.options.name} (${max} rows shared by ${active} tenants), the newest dropped to make room for another tenant: retry later`,
          { retryAfterMs },
        ),
      );
    }
    return undefined;
  }

  private shareOf(activeTenants: number): number {
    return Math.max(Math.floor(this.options.maxQueueRows / Math.max(1, activeTenants)), this.minShare);
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
    const queue = this.tenants.get(entry.tenant);
    const i = queue ? queue.entries.indexOf(entry) : -1;
    if (!queue || i < 0) return false;
    queue.entries.splice(i, 1);
    queue.rows -= entry.item.rows;
    this.queued -= entry.item.rows;
    this.entries--;
    if (queue.entries.length === 0) this.dropTenant(queue);
    this.checkIdle();
    return true;
  }

  private dropTenant(queue: TenantQueue<T, R>): void {
    this.tenants.delete(queue.tenant);
    const i = this.ring.indexOf(queue);
    if (i < 0) return;
    this.ring.splice(i, 1);
    if (i < this.cursor) this.cursor--;
    if (this.cursor >= this.ring.length) this.cursor = 0;
  }

  private detach(entry: Entry<T, R>): void {
    if (entry.onAbort) entry.item.signal?.removeEventListener('abort', entry.onAbort);
  }

  private dropExpired(now: number): void {
    const emptied: TenantQueue<T, R>[] = [];
    for (const queue of this.ring) {
      const entries = queue.entries;
      for (let i = 0; i < entries.length; ) {
        const entry = entries[i]!;
        if (entry.item.deadline !== undefined && entry.item.deadline <= now) {
          entries.splice(i, 1);
          queue.rows -= entry.item.rows;
          this.queued -= entry.item.rows;
          this.entries--;
          this.detach(entry);
          this.counters.expired++;
          entry.reject(new DeadlineExceededError('deadline exceeded while queued for a batch'));
        } else {
          i++;
        }
      }
      if (entries.length === 0) emptied.push(queue);
    }
    for (const queue of emptied) this.dropTenant(queue);
  }

  private pump(): void {
    const now = this.now();
    this.dropExpired(now);
    while (this.running < this.options.maxInFlight && this.entries > 0) {
      const candidate = this.nextBatch(now);
      if (!candidate.ready) {
        this.armTimer(candidate.dueAt - now);
        break;
      }
      this.run(this.take(candidate), candidate.rows);
    }
    this.checkIdle();
  }

  /**
   * The batch starting with the first tenant from the cursor whose batch may go now; when none
   * may, the earliest moment one may (as `dueAt`, `ready` false).
   */
  private nextBatch(now: number): Candidate<T, R> {
    const n = this.ring.length;
    const seenKeys = new Set<string>();
    let earliest: Candidate<T, R> | undefined;
    for (let k = 0; k < n; k++) {
      const start = (this.cursor + k) % n;
      const key = this.ring[start]!.entries[0]!.item.key;
      // Without a full batch, every start with the same key gathers the same requests.
      if (seenKeys.has(key)) continue;
      seenKeys.add(key);
      const candidate = this.gather(start, key, now);
      if (candidate.ready) return candidate;
      if (!earliest || candidate.dueAt < earliest.dueAt) earliest = candidate;
    }
    return earliest!;
  }

  /** Requests with `key`, one per tenant per round from `start`, in each tenant's arrival order, while they fit. */
  private gather(start: number, key: string, now: number): Candidate<T, R> {
    const n = this.ring.length;
    const max = this.options.maxBatchRows;
    const next = new Array<number>(n).fill(0);
    const picks: Array<{ queue: TenantQueue<T, R>; index: number }> = [];
    let rows = 0;
    let oldest = Infinity;
    let full = false;
    let progressed = true;
    while (progressed && !full) {
      progressed = false;
      for (let k = 0; k < n && !full; k++) {
        const slot = (start + k) % n;
        const queue = this.ring[slot]!;
        let i = next[slot]!;
        while (i < queue.entries.length && queue.entries[i]!.item.key !== key) i++;
        next[slot] = i + 1;
        const entry = queue.entries[i];
        if (!entry) continue;
        if (rows + entry.item.rows > max) {
          full = true;
          break;
        }
        rows += entry.item.rows;
        oldest = Math.min(oldest, entry.enqueuedAt);
        picks.push({ queue, index: i });
        progressed = true;
        full = rows >= max;
      }
    }
    const dueAt = oldest + this.options.maxQueueDelayMs;
    return { start, picks, rows, dueAt, ready: full || this.preferred.has(rows) || now >= dueAt };
  }

  /** Removes the candidate's requests from their queues and passes the turn to the next tenant. */
  private take(candidate: Candidate<T, R>): Entry<T, R>[] {
    const starter = this.ring[candidate.start]!;
    const batch: Entry<T, R>[] = [];
    const byQueue = new Map<TenantQueue<T, R>, number[]>();
    for (const p of candidate.picks) {
      const entry = p.queue.entries[p.index]!;
      batch.push(entry);
      p.queue.rows -= entry.item.rows;
      const list = byQueue.get(p.queue);
      if (list) list.push(p.index);
      else byQueue.set(p.queue, [p.index]);
    }
    this.cursor = candidate.start;
    for (const [queue, indices] of byQueue) {
      // Common case: the picks are the queue's first requests.
      if (indices[indices.length - 1] === indices.length - 1) {
        queue.entries.splice(0, indices.length);
      } else {
        const taken = new Set(indices);
        let w = 0;
        for (let i = 0; i < queue.entries.length; i++) if (!taken.has(i)) queue.entries[w++] = queue.entries[i]!;
        queue.entries.length = w;
      }
    }
    this.queued -= candidate.rows;
    this.entries -= batch.length;
    for (const queue of byQueue.keys()) if (queue.entries.length === 0) this.dropTenant(queue);
    // The turn passes to the tenant after the starter (dropTenant already moved the cursor there if the starter left).
    if (this.ring[this.cursor] === starter) this.cursor = (this.cursor + 1) % this.ring.length;
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
    const dispatchedAt = performance.now();
    const waitedMs = batch.map((e) => dispatchedAt - e.queuedAt);
    // The next batch is dispatched before this one's callers are answered, so the executor (a
    // worker thread) computes while this thread encodes and sends the responses.
    const release = () => {
      this.running--;
      this.pump();
    };
    new Promise<readonly (R | ItemFailure)[]>((resolve) => resolve(this.execute(payloads, rowCounts, waitedMs))).then(
      (results) => {
        release();
        if (results.length !== batch.length) {
          const err = new Error(`executor returned ${results.length} results for ${batch.length} requests`);
          for (const entry of batch) entry.reject(err);
          return;
        }
        for (const [i, entry] of batch.entries()) {
          const result = results[i]!;
          if (result instanceof ItemFailure) entry.reject(result.error);
          else entry.resolve(result);
        }
      },
      (err: unknown) => {
        release();
        for (const entry of batch) entry.reject(err);
      },
    );
  }

  private checkIdle(): void {
    if (this.entries > 0 || this.running > 0 || this.idleWaiters.length === 0) return;
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
