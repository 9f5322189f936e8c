import { performance } from 'node:perf_hooks';
import type { LoadResult, LoadSpec, WindowPhase } from './protocol.js';
import { SampleBuffer, summarizeLatencies } from './stats.js';

/** What a successful answer said: a tally key, and time per stage the server reported (ms). */
export interface Answer {
  readonly outcome?: string | undefined;
  readonly stages?: readonly (readonly [string, number])[] | undefined;
}

/**
 * Sends one request and calls `done` with null on success or the name of the failure, and
 * optionally what the answer said (tallied). Must call `done` asynchronously (gRPC callbacks
 * always are); the closed loop chains on it.
 */
export type Sender = (payload: Uint8Array, deadline: Date, done: (error: string | null, answer?: Answer) => void) => void;

type Timing = Pick<LoadSpec, 'payloads' | 'rowsPerRequest' | 'deadlineMs' | 'warmupMs' | 'durationMs' | 'mode'>;

export interface LoadHooks {
  /** The request to send for the i-th payload (default: the payload itself); e.g. the template with a user written in. */
  readonly request?: ((payload: Uint8Array) => Uint8Array) | undefined;
  /** Called when the measured window starts and ends. */
  readonly onWindow?: ((phase: WindowPhase) => void) | undefined;
}

/** Runs one measurement with `senders` (one per connection) and summarizes it. */
export function runLoad(spec: Timing, senders: readonly Sender[], hooks: LoadHooks = {}): Promise<LoadResult> {
  if (senders.length === 0) throw new Error('runLoad needs at least one sender');
  if (spec.payloads.length === 0) throw new Error('runLoad needs at least one payload');
  const request = hooks.request ?? ((payload: Uint8Array) => payload);
  const windowTimers = hooks.onWindow
    ? [setTimeout(() => hooks.onWindow?.('start'), spec.warmupMs), setTimeout(() => hooks.onWindow?.('end'), spec.warmupMs + spec.durationMs)]
    : [];
  const run = spec.mode.kind === 'closed' ? closedLoop(spec, senders, spec.mode.concurrency, request) : openLoop(spec, senders, spec.mode.ratePerS, spec.mode.maxOutstanding, request);
  return run.finally(() => windowTimers.forEach(clearTimeout));
}

class Recorder {
  readonly latencies = new SampleBuffer();
  readonly errors: Record<string, number> = {};
  readonly outcomes: Record<string, number> = {};
  readonly stages: Record<string, { count: number; totalMs: number }> = {};
  errorCount = 0;
  private cpuStart: NodeJS.CpuUsage | undefined;
  private cpuUsedUs = 0;

  startCpu(): void {
    this.cpuStart = process.cpuUsage();
  }

  stopCpu(): void {
    if (this.cpuStart === undefined) return;
    const used = process.cpuUsage(this.cpuStart);
    this.cpuUsedUs = used.user + used.system;
    this.cpuStart = undefined;
  }

  ok(latencyMs: number, answer: Answer | undefined): void {
    this.latencies.push(latencyMs);
    if (answer?.outcome !== undefined) this.outcomes[answer.outcome] = (this.outcomes[answer.outcome] ?? 0) + 1;
    for (const [stage, ms] of answer?.stages ?? []) {
      const sum = (this.stages[stage] ??= { count: 0, totalMs: 0 });
      sum.count++;
      sum.totalMs += ms;
    }
  }

  failed(name: string): void {
    this.errors[name] = (this.errors[name] ?? 0) + 1;
    this.errorCount++;
  }

  result(spec: Timing, durationMs: number): LoadResult {
    const requests = this.latencies.length;
    const durationS = durationMs / 1000;
    return {
      mode: spec.mode,
      durationS,
      requests,
      rows: requests * spec.rowsPerRequest,
      requestsPerS: requests / durationS,
      rowsPerS: (requests * spec.rowsPerRequest) / durationS,
      errors: { ...this.errors },
      errorCount: this.errorCount,
      latencyMs: summarizeLatencies(this.latencies.values()),
      clientCpuCores: this.cpuUsedUs / 1000 / durationMs,
      outcomes: { ...this.outcomes },
      stageMeansMs: Object.fromEntries(Object.entries(this.stages).map(([stage, { count, totalMs }]) => [stage, totalMs / count])),
    };
  }
}

type MakeRequest = (payload: Uint8Array) => Uint8Array;

function closedLoop(spec: Timing, senders: readonly Sender[], concurrency: number, request: MakeRequest): Promise<LoadResult> {
  if (!(concurrency >= 1)) throw new Error(`closed loop needs at least one client, got ${concurrency}`);
  const { payloads } = spec;
  const recorder = new Recorder();
  const t0 = performance.now();
  const windowStart = t0 + spec.warmupMs;
  const windowEnd = windowStart + spec.durationMs;
  let next = 0;
  let active = concurrency;
  const cpuStartTimer = setTimeout(() => recorder.startCpu(), spec.warmupMs);
  const cpuStopTimer = setTimeout(() => recorder.stopCpu(), spec.warmupMs + spec.durationMs);

  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(cpuStartTimer);
      clearTimeout(cpuStopTimer);
      recorder.stopCpu();
      resolve(recorder.result(spec, spec.durationMs));
    };
    const sendNext = (client: number): void => {
      const started = performance.now();
      if (started >= windowEnd) {
        if (--active === 0) finish();
        return;
      }
      const payload = request(payloads[next++ % payloads.length] as Uint8Array);
      const sender = senders[client % senders.length] as Sender;
      sender(payload, new Date(Date.now() + spec.deadlineMs), (error, answer) => {
        const ended = performance.now();
        // Steady state is what completes inside the window, whenever it was sent.
        if (ended >= windowStart && ended <= windowEnd) {
          if (error === null) recorder.ok(ended - started, answer);
          else recorder.failed(error);
        }
        sendNext(client);
      });
    };
    for (let client = 0; client < concurrency; client++) sendNext(client);
  });
}

function openLoop(spec: Timing, senders: readonly Sender[], ratePerS: number, maxOutstanding: number, request: MakeRequest): Promise<LoadResult> {
  if (!(ratePerS > 0)) throw new Error(`open loop needs a positive rate, got ${ratePerS}`);
  const { payloads } = spec;
  const recorder = new Recorder();
  const interval = 1000 / ratePerS;
  const t0 = performance.now();
  const windowStart = t0 + spec.warmupMs;
  const windowEnd = windowStart + spec.durationMs;
  let due = t0;
  let sent = 0;
  let outstanding = 0;
  let scheduling = true;
  let cpuStarted = false;

  return new Promise((resolve) => {
    const maybeFinish = (): void => {
      if (!scheduling && outstanding === 0) {
        recorder.stopCpu();
        resolve(recorder.result(spec, spec.durationMs));
      }
    };
    const fire = (dueAt: number): void => {
      // Only requests due inside the window are measured, each until it ends: dropping
      // the slow stragglers at the end of the window would flatter the tail.
      const measured = dueAt >= windowStart;
      if (outstanding >= maxOutstanding) {
        if (measured) recorder.failed('CLIENT_OVERLOAD');
        return;
      }
      outstanding++;
      const payload = request(payloads[sent % payloads.length] as Uint8Array);
      const sender = senders[sent % senders.length] as Sender;
      sent++;
      sender(payload, new Date(Date.now() + spec.deadlineMs), (error, answer) => {
        outstanding--;
        if (measured) {
          if (error === null) recorder.ok(performance.now() - dueAt, answer);
          else recorder.failed(error);
        }
        maybeFinish();
      });
    };
    const tick = (): void => {
      const now = performance.now();
      if (!cpuStarted && now >= windowStart) {
        cpuStarted = true;
        recorder.startCpu();
      }
      while (due <= now && due < windowEnd) {
        fire(due);
        due += interval;
      }
      if (due >= windowEnd) {
        recorder.stopCpu();
        scheduling = false;
        maybeFinish();
        return;
      }
      setTimeout(tick, Math.max(0, due - performance.now()));
    };
    tick();
  });
}
