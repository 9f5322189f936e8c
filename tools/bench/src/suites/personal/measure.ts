import type { LoadGenerator } from '../../load/load-generator.js';
import type { LoadMode, LoadResult, LoadSpec, ResponseCheck, WindowPhase } from '../../load/protocol.js';
import type { UserSelection } from '../../load/users.js';
import type { Progress } from '../../progress.js';
import type { ContenderFigures, LatencyFigures } from '../../report/personal-record.js';
import { percentile } from '../../load/stats.js';
import { round } from '../common.js';

/** Tenant of every call of the suite (metadata `x-aimass-tenant`). */
export const BENCH_TENANT = 'bench';
/** The backends' user ids are `user-<rank>`. */
export const USER_PREFIX = 'user-';
/** Root secret of fusion's pseudonyms in this run (and of the million-user store's). */
export const PSEUDONYM_SECRET = 'aimass-bench-pseudonym-root-secret-2f1c9b7e';
/** Deadline of every measured call: long enough that only a broken service misses it. */
export const CALL_DEADLINE_MS = 30_000;

export interface MeasureSpec {
  readonly label: string;
  readonly address: string;
  readonly method: string;
  readonly payloads: readonly Uint8Array[];
  readonly response: ResponseCheck;
  readonly users?: UserSelection | undefined;
  readonly mode: LoadMode;
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly onWindow?: ((phase: WindowPhase) => void) | undefined;
  /** Planned time of the step for the ETA (0: unplanned). */
  readonly plannedMs: number;
}

/** One measurement in the load process, announced and summarized on the progress line. */
export async function measure(load: LoadGenerator, progress: Progress, m: MeasureSpec): Promise<LoadResult> {
  progress.step(m.label, m.plannedMs);
  const spec: LoadSpec = {
    address: m.address,
    method: m.method,
    payloads: m.payloads,
    rowsPerRequest: 1,
    expectedOutputs: 0,
    response: m.response,
    metadata: { 'x-aimass-tenant': BENCH_TENANT },
    users: m.users,
    connections: m.mode.kind === 'closed' ? Math.min(m.mode.concurrency, m.connections) : m.connections,
    deadlineMs: CALL_DEADLINE_MS,
    warmupMs: m.warmupMs,
    durationMs: m.durationMs,
    mode: m.mode,
  };
  const result = await load.run(spec, m.onWindow);
  const errors = result.errorCount > 0 ? `, errors ${JSON.stringify(result.errors)}` : '';
  const outcomes = Object.keys(result.outcomes).length > 0 ? `, ${JSON.stringify(result.outcomes)}` : '';
  const stages = Object.entries(result.stageMeansMs);
  const stageLine = stages.length > 0 ? `; server stages (mean ms): ${stages.map(([k, v]) => `${k.toLowerCase()} ${v.toFixed(2)}`).join(', ')}` : '';
  progress.note(
    `${Math.round(result.rowsPerS)} rows/s, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms, load process ${result.clientCpuCores.toFixed(2)} cores${errors}${outcomes}${stageLine}`,
  );
  return result;
}

export function figuresOf(concurrency: number, r: LoadResult): ContenderFigures {
  return {
    concurrency,
    rows_per_s: round(r.rowsPerS, 1),
    p50_ms: round(r.latencyMs.p50, 3),
    p99_ms: round(r.latencyMs.p99, 3),
    errors: r.errorCount,
    error_kinds: r.errors,
    client_cpu_cores: round(r.clientCpuCores, 2),
    outcomes: r.outcomes,
    stage_mean_ms: Object.fromEntries(Object.entries(r.stageMeansMs).map(([k, v]) => [k, round(v, 3)])),
  };
}

/** Nearest-rank percentiles of raw timings. */
export function latencyFigures(samples: readonly number[]): LatencyFigures {
  const sorted = Float64Array.from(samples).sort();
  return {
    samples: sorted.length,
    p50_ms: round(percentile(sorted, 0.5), 4),
    p99_ms: round(percentile(sorted, 0.99), 4),
    max_ms: round(sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number), 4),
  };
}
