import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { UnavailableError, type Logger } from '@aimass/platform';
import { DATATYPES, datatypeOfOrt } from '../domain/datatypes.js';
import type { HostTensor } from '../domain/tensor.js';
import type { FromWorker, ToWorker, WireSessionOptions, WireTensor, WireValueMeta, WorkerData, WorkerFault } from './worker-protocol.js';
import { resolveWorkerScript } from './worker-script.js';

export interface WorkerPoolOptions {
  /** Worker threads; each holds one onnxruntime session per loaded model version. */
  size: number;
  intraOpNumThreads: number;
  /** Resolved providers, in order of preference (see resolveExecutionProviders). */
  executionProviders: string[];
  graphOptimizationLevel?: WireSessionOptions['graphOptimizationLevel'] | undefined;
  logger: Logger;
  /** How long a run may wait for a replacement worker when no running worker has the model. */
  restartWaitMs?: number | undefined;
}

export interface SessionInfo {
  inputs: WireValueMeta[];
  outputs: WireValueMeta[];
  loadMs: number;
  warmupMs: number;
}

export interface RunResult {
  outputs: HostTensor[];
  runMs: number;
}

export interface PoolStats {
  size: number;
  /** Workers running and accepting work. */
  alive: number;
  /** session.run calls completed (warm-up runs not included). */
  runs: number;
  /** Workers replaced after a crash. */
  restarts: number;
  crashes: number;
}

interface PendingCall {
  resolve: (message: FromWorker) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  /** Bumped on each replacement, so a stale replacement loop stops. */
  generation: number;
  calls: Map<number, PendingCall>;
  runsInFlight: number;
  models: Set<string>;
  lastError: Error | undefined;
  failures: number;
}

interface Waiter {
  key: string;
  feeds: HostTensor[];
  resolve: (r: RunResult) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

const require = createRequire(import.meta.url);

/**
 * worker_threads running onnxruntime. Every worker loads every model version (so any worker can
 * take any batch) and runs one batch at a time per call; the pool sends a batch to the worker with
 * the fewest runs in flight. A worker that dies (crash, `process.exit`, terminate) fails its
 * in-flight calls with UNAVAILABLE at once, and is replaced: the new worker reloads the model
 * versions before it takes work.
 */
/** The worker ran the operation and onnxruntime refused it (the thread itself is fine). */
export class WorkerReportedError extends Error {
  override readonly name = 'WorkerReportedError';
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly models = new Map<string, { path: string; warmup: boolean }>();
  private waiting: Waiter[] = [];
  private nextId = 1;
  private closed = false;
  private runs = 0;
  private restarts = 0;
  private crashes = 0;
  private scriptUrl: URL | undefined;

  private constructor(private readonly options: WorkerPoolOptions) {}

  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    if (!(options.size >= 1)) throw new RangeError('pool size must be at least 1');
    const pool = new WorkerPool(options);
    pool.scriptUrl = await resolveWorkerScript();
    for (let i = 0; i < options.size; i++) {
      pool.slots.push({
        index: i,
        worker: undefined,
        ready: false,
        generation: 0,
        calls: new Map(),
        runsInFlight: 0,
        models: new Set(),
        lastError: undefined,
        failures: 0,
      });
    }
    try {
      await Promise.all(pool.slots.map((slot) => pool.spawn(slot)));
    } catch (err) {
      await pool.close();
      throw err;
    }
    for (const slot of pool.slots) slot.ready = true;
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  get sessionOptions(): WireSessionOptions {
    return {
      intraOpNumThreads: this.options.intraOpNumThreads,
      executionProviders: this.options.executionProviders,
      graphOptimizationLevel: this.options.graphOptimizationLevel ?? 'all',
    };
  }

  stats(): PoolStats {
    return {
      size: this.slots.length,
      alive: this.slots.filter((s) => s.ready).length,
      runs: this.runs,
      restarts: this.restarts,
      crashes: this.crashes,
    };
  }

  /** Loads a model version in every worker (with a warm-up run), or in none if any fails. */
  async load(key: string, path: string, warmup = true): Promise<SessionInfo> {
    this.assertOpen();
    const targets = this.slots.filter((s) => s.ready);
    if (targets.length === 0) throw new UnavailableError('no inference worker is running', { retryAfterMs: 1000 });
    this.models.set(key, { path, warmup });
    const results = await Promise.allSettled(targets.map((slot) => this.loadOn(slot, key, path, warmup)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      this.models.delete(key);
      await Promise.allSettled(targets.map((slot) => this.unloadOn(slot, key)));
      throw failed.reason;
    }
    return (results[0] as PromiseFulfilledResult<SessionInfo>).value;
  }

  /** Releases a model version's sessions in every worker. */
  async unload(key: string): Promise<void> {
    this.models.delete(key);
    await Promise.allSettled(this.slots.filter((s) => s.ready && s.models.has(key)).map((slot) => this.unloadOn(slot, key)));
  }

  /** Runs one batch on the least busy worker that has the model version. */
  run(key: string, feeds: HostTensor[]): Promise<RunResult> {
    if (this.closed) return Promise.reject(new UnavailableError('the inference pool is shut down'));
    const slot = this.pick(key);
    if (slot) return this.runOn(slot, key, feeds);
    const restarting = this.slots.some((s) => !s.ready);
    if (!restarting || !this.models.has(key)) {
      return Promise.reject(new UnavailableError(`model ${key} is not loaded in any inference worker`, { retryAfterMs: 1000 }));
    }
    return new Promise<RunResult>((resolve, reject) => {
      const waiter: Waiter = {
        key,
        feeds,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiting = this.waiting.filter((w) => w !== waiter);
          reject(new UnavailableError('no inference worker came back in time; retry later', { retryAfterMs: 1000 }));
        }, this.options.restartWaitMs ?? 10_000),
      };
      this.waiting.push(waiter);
    });
  }

  /** Test hook: make a worker die now or on its next run. */
  injectFault(index: number, fault: WorkerFault): void {
    const slot = this.slots[index];
    if (!slot?.worker) throw new RangeError(`no worker ${index}`);
    slot.worker.postMessage({ op: 'fault', fault } satisfies ToWorker);
  }

  /** Test hook: terminate a worker as if it had crashed. */
  async terminateWorker(index: number): Promise<void> {
    const worker = this.slots[index]?.worker;
    if (!worker) throw new RangeError(`no worker ${index}`);
    await worker.terminate();
  }

  /** Resolves once every worker is running again (tests wait on it after a crash). */
  async whenAllAlive(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.slots.some((s) => !s.ready)) {
      if (Date.now() > until) throw new Error('workers did not come back');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new UnavailableError('the inference pool is shut down'));
    }
    await Promise.all(
      this.slots.map(async (slot) => {
        slot.ready = false;
        const worker = slot.worker;
        slot.worker = undefined;
        this.failCalls(slot, 'the inference pool is shut down');
        if (worker) await worker.terminate();
      }),
    );
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('the inference pool is shut down');
  }

  private pick(key: string): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (!s.ready || !s.models.has(key)) continue;
      if (!best || s.runsInFlight < best.runsInFlight) best = s;
    }
    return best;
  }

  private spawn(slot: Slot): Promise<void> {
    const worker = new Worker(this.scriptUrl!, { workerData: { ortPath: require.resolve('onnxruntime-node') } satisfies WorkerData });
    slot.worker = worker;
    slot.ready = false;
    slot.models.clear();
    slot.lastError = undefined;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on('message', (message: FromWorker) => {
        if (message.op === 'ready') {
          started = true;
          resolve();
          return;
        }
        this.onMessage(slot, message);
      });
      worker.on('error', (err) => {
        slot.lastError = err;
      });
      worker.on('exit', (code) => {
        if (!started) {
          // The caller (start or the replacement loop) handles a worker that never came up.
          if (slot.worker === worker) slot.worker = undefined;
          reject(new Error(`inference worker ${slot.index} failed to start (${slot.lastError?.message ?? `exit code ${code}`})`));
          return;
        }
        this.onExit(slot, worker, code);
      });
    });
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    if (message.op === 'ready') return;
    const call = slot.calls.get(message.id);
    if (!call) return;
    slot.calls.delete(message.id);
    if (message.op === 'error') call.reject(new WorkerReportedError(message.message));
    else call.resolve(message);
  }

  private failCalls(slot: Slot, reason: string): void {
    const calls = [...slot.calls.values()];
    slot.calls.clear();
    slot.runsInFlight = 0;
    for (const call of calls) call.reject(new UnavailableError(reason, { retryAfterMs: 100 }));
  }

  private onExit(slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker) return;
    slot.ready = false;
    slot.worker = undefined;
    if (this.closed) return;
    const cause = slot.lastError?.message ?? `exit code ${code}`;
    this.crashes++;
    this.failCalls(slot, `inference worker ${slot.index} stopped (${cause}) before finishing the request; retry it`);
    this.options.logger.error({ worker: slot.index, code, cause }, 'inference worker died: replacing it');
    void this.replace(slot);
  }

  private async replace(slot: Slot): Promise<void> {
    const generation = ++slot.generation;
    for (;;) {
      if (this.closed || slot.generation !== generation) return;
      if (slot.failures > 0) await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** (slot.failures - 1))));
      if (this.closed || slot.generation !== generation) return;
      try {
        await this.spawn(slot);
        for (const [key, { path, warmup }] of this.models) {
          try {
            await this.loadOn(slot, key, path, warmup);
          } catch (err) {
            if (slot.worker === undefined) throw err;
            this.options.logger.error({ worker: slot.index, model: key, err }, 'replacement worker could not load a model version');
          }
        }
        if (this.closed || slot.generation !== generation) return;
        slot.ready = true;
        slot.failures = 0;
        this.restarts++;
        this.options.logger.info({ worker: slot.index, models: [...slot.models] }, 'inference worker replaced');
        this.flushWaiting();
        return;
      } catch (err) {
        slot.failures++;
        this.options.logger.error({ worker: slot.index, err }, 'replacement worker failed');
        // A worker that died already started the next replacement from onExit.
        if (slot.generation !== generation) return;
      }
    }
  }

  private flushWaiting(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) {
      clearTimeout(w.timer);
      this.run(w.key, w.feeds).then(w.resolve, w.reject);
    }
  }

  private call(slot: Slot, message: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    const worker = slot.worker;
    if (!worker) return Promise.reject(new UnavailableError(`inference worker ${slot.index} is not running`, { retryAfterMs: 100 }));
    return new Promise<FromWorker>((resolve, reject) => {
      slot.calls.set((message as { id: number }).id, { resolve, reject });
      worker.postMessage(message, transfer);
    });
  }

  private async loadOn(slot: Slot, key: string, path: string, warmup: boolean): Promise<SessionInfo> {
    const reply = await this.call(slot, { op: 'load', id: this.nextId++, key, path, options: this.sessionOptions, warmup });
    if (reply.op !== 'loaded') throw new Error(`unexpected reply ${reply.op}`);
    slot.models.add(key);
    return { inputs: reply.inputs, outputs: reply.outputs, loadMs: reply.loadMs, warmupMs: reply.warmupMs };
  }

  private async unloadOn(slot: Slot, key: string): Promise<void> {
    slot.models.delete(key);
    await this.call(slot, { op: 'unload', id: this.nextId++, key });
  }

  private async runOn(slot: Slot, key: string, feeds: HostTensor[]): Promise<RunResult> {
    const transfer: ArrayBuffer[] = [];
    const wire: WireTensor[] = feeds.map((t) => {
      const buffer = t.bytes.buffer as ArrayBuffer;
      if (!transfer.includes(buffer)) transfer.push(buffer);
      return { name: t.name, type: DATATYPES[t.datatype].ort, dims: t.dims, buffer, byteOffset: t.bytes.byteOffset, byteLength: t.bytes.byteLength };
    });
    slot.runsInFlight++;
    const generation = slot.generation;
    try {
      const reply = await this.call(slot, { op: 'run', id: this.nextId++, key, feeds: wire }, transfer);
      if (reply.op !== 'result') throw new Error(`unexpected reply ${reply.op}`);
      this.runs++;
      return {
        runMs: reply.runMs,
        outputs: reply.outputs.map((o) => {
          const datatype = datatypeOfOrt(o.type);
          if (!datatype) throw new Error(`output '${o.name}' has type ${o.type}, which this server cannot return`);
          return { name: o.name, datatype, dims: o.dims, bytes: new Uint8Array(o.buffer, o.byteOffset, o.byteLength) };
        }),
      };
    } finally {
      // After a crash the count was reset for the replacement worker: do not touch it.
      if (slot.generation === generation && slot.runsInFlight > 0) slot.runsInFlight--;
    }
  }
}
