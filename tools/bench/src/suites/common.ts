import { cpus, loadavg, totalmem } from 'node:os';
import { createServer } from 'node:net';
import type { LoadResult } from '../load/protocol.js';
import type { Progress } from '../progress.js';
import type { SweepPoint } from '../report/record.js';

/** A TCP port free on 127.0.0.1 right now, for a service process to bind. */
export async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * The item whose `key` is the median (the lower middle of an even count, so two rounds never
 * report more than the worse one showed; ties go to the earlier item). A NaN key sorts first.
 */
export function lowerMedianBy<T>(items: readonly T[], key: (item: T) => number): T {
  if (items.length === 0) throw new RangeError('lowerMedianBy: no items');
  const k = (item: T) => (Number.isNaN(key(item)) ? -Infinity : key(item));
  const sorted = items.map((item, index) => ({ item, index })).sort((a, b) => k(a.item) - k(b.item) || a.index - b.index);
  return sorted[Math.floor((sorted.length - 1) / 2)]!.item;
}

/** A load run's figures, with the server's CPU when the suite measured it. */
export function sweepPoint(concurrency: number, r: LoadResult, serverCpuCores?: number): SweepPoint {
  const server =
    serverCpuCores === undefined || !Number.isFinite(serverCpuCores)
      ? {}
      : { server_cpu_cores: round(serverCpuCores, 2), server_cpu_us_per_row: r.rowsPerS > 0 ? round((serverCpuCores * 1e6) / r.rowsPerS, 1) : Number.NaN };
  return {
    concurrency,
    rows_per_s: round(r.rowsPerS, 1),
    p50_ms: round(r.latencyMs.p50, 3),
    p99_ms: round(r.latencyMs.p99, 3),
    errors: r.errorCount,
    client_cpu_cores: round(r.clientCpuCores, 2),
    ...server,
  };
}

/** The machine and the run, for the report. */
export function environment(quick: boolean): Record<string, unknown> {
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gb: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    quick,
    time: new Date().toISOString(),
  };
}

/** The load averages, rounded (other work on the machine skews every figure). */
export function loadAverages(): number[] {
  return loadavg().map((l) => round(l, 2));
}

/** Warns when the machine is already busy: every figure would be skewed. */
export function warnIfBusy(progress: Progress): void {
  const [initialLoad = 0] = loadavg();
  if (initialLoad > cpus().length / 2) {
    progress.note(`the machine is busy before the bench starts (load average ${initialLoad.toFixed(2)} on ${cpus().length} cores): figures will be skewed`);
  }
}
