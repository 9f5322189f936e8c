import { performance } from 'node:perf_hooks';
import type { LoadResult, LoadSpec } from './protocol.js';
import { SampleBuffer, summarizeLatencies } from './stats.js';

/**
 * Sends one request and calls `done` with null on success or the name of the failure.
 * Must call `done` asynchronously (gRPC callbacks always are); the closed loop chains on it.
 */
export type Sender = (payload: Uint8Array, deadline: Date, done: (error: string | null) => void) => void;

type Timing = Pick<LoadSpec, 'payloads' | 'rowsPerRequest' | 'deadlineMs' | 'warmupMs' | 'durationMs' | 'mode'>;

/** Runs one measurement with `senders` (one per connection) and summarizes it. */
export function runLoad(spec: Timing, senders: readonly Sender[]): Promise<LoadResult> {
  if (senders.length === 0) throw new Error('runLoad needs at least one sender');
  if (spec.payloads.length === 0) throw new Error('runLoad needs at least one payload');
  return spec.mode.kind === 'closed' ? closedLoop(spec, senders, spec.mode.concurrency) : openLoop(spec, senders, spec.mode.ratePerS, spec.mode.maxOutstanding);
}

class Recorder {
  readonly latencies = new SampleBuffer();
  readonly errors: Record<string, number> = {};
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

  ok(latencyMs: number): void {
    this.latencies.push(latencyMs);
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
    };
  }
}

function closedLoop(spec: Timing, senders: readonly Sender[], concurrency: number): Promise<LoadResult> {
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
      const payload = payloads[next++ % payloads.length] as Uint8Array;
      const sender = senders[client % senders.length] as Sender;
      sender(payload, new Date(Date.now() + spec.deadlineMs), (error) => {
        const ended = performance.now();
        // Steady state is what completes inside the window, whenever it was sent.
        if (ended >= windowStart && ended <= windowEnd) {
          if (error === null) recorder.ok(ended - started);
          else recorder.failed(error);
        }
        sendNext(client);
      });
    };
    for (let client = 0; client < concurrency; client++) sendNext(client);
  });
}

function openLoop(spec: Timing, senders: readonly Sender[], ratePerS: number, maxOutstanding: number): Promise<LoadResult> {
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
      const payload = payloads[sent % payloads.length] as Uint8Array;
      const sender = senders[sent % senders.length] as Sender;
      sent++;
      sender(payload, new Date(Date.now() + spec.deadlineMs), (error) => {
        outstanding--;
        if (measured) {
          if (error === null) recorder.ok(performance.now() - dueAt);
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
