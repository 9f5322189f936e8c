import type { ServiceStages } from '../contenders/model-statistics.js';

/** One measured point of a concurrency sweep. */
export interface SweepPoint {
  readonly concurrency: number;
  readonly rows_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly errors: number;
  /** CPU the load process used, in cores: on a small machine it competes with the server. */
  readonly client_cpu_cores: number;
  /**
   * CPU the server used, in cores, over the whole load run (its warm-up too), and per row
   * served: what a contender costs, whatever else the machine was doing.
   */
  readonly server_cpu_cores?: number;
  readonly server_cpu_us_per_row?: number;
  /** The service's mean rows per batch over the run (its ModelStatistics); absent for the other contenders. */
  readonly mean_batch_rows?: number;
  /** Where the service's requests spent their time over the run (its ModelStatistics); absent for the other contenders. */
  readonly service_stages?: ServiceStages;
}

export type ModelName = 'default' | 'medium' | 'heavy';
export type LimitKind = 'echo' | 'onnxruntime';

/** One round at the headline concurrency: the limit, the naive server and the service back to back. */
export interface GeneralRound {
  readonly round: number;
  readonly limit_rows_per_s: number;
  readonly service_rows_per_s: number;
  readonly naive_rows_per_s: number;
  readonly ratio_vs_limit: number;
  readonly ratio_vs_naive: number;
}

/** The ratio a model's goal is about. */
export function goalRatioOf(r: Pick<GeneralRound, 'ratio_vs_limit' | 'ratio_vs_naive'>, against: 'limit' | 'naive'): number {
  return against === 'limit' ? r.ratio_vs_limit : r.ratio_vs_naive;
}

/** One model's result: the fields the issue asks for first, then what explains them. */
export interface BenchRecord {
  readonly model: ModelName;
  readonly limit_kind: LimitKind;
  /** At the headline concurrency, as the other rows/s and the ratios: the median round's. */
  readonly limit_rows_per_s: number;
  /** The service's rows/s at the headline concurrency. */
  readonly service_rows_per_s: number;
  readonly naive_rows_per_s: number;
  readonly ratio_vs_limit: number;
  readonly ratio_vs_naive: number;
  /** Median latency at half the service's peak load (the same open-loop run as p99_ms_half_load). */
  readonly p50_ms: number;
  readonly p99_ms_half_load: number;

  /** The goal for this model, in words, and whether this run met it. */
  readonly goal: string;
  /** Which ratio the goal is about: ratio_vs_limit or ratio_vs_naive (it picks the median round). */
  readonly goal_against: 'limit' | 'naive';
  readonly goal_met: boolean;
  /** Configured queue delay + 2 × one batch's run time at the service's max batch size. */
  readonly p99_bound_ms: number;
  readonly p99_bound_met: boolean;
  readonly queue_delay_ms: number;
  readonly max_batch_size: number;
  readonly batch_run_ms: number;
  /** The open-loop rate of the half-load run (50% of the service's peak over the sweep). */
  readonly half_load_rows_per_s: number;
  readonly half_load_errors: number;
  /** The echo server under the same open loop: the client's and the transport's share of the latency. */
  readonly echo_p50_ms_half_load: number;
  readonly echo_p99_ms_half_load: number;
  /** Where the service's requests spent their time in the half-load run (its ModelStatistics). */
  readonly service_stages_half_load?: ServiceStages;
  readonly service_peak_rows_per_s: number;
  readonly headline_concurrency: number;
  readonly flops_per_row: number | null;
  readonly request: string;
  /** How each contender ran (service workers and threads, naive and raw session options). */
  readonly setup: Readonly<Record<string, unknown>>;
  readonly sweep: {
    readonly service: readonly SweepPoint[];
    readonly naive: readonly SweepPoint[];
    readonly echo?: readonly SweepPoint[];
  };
  /**
   * Every round at the headline concurrency (the sweep's is the first); the rows/s and ratios
   * above are the round whose goal ratio is the median (`median_round`).
   */
  readonly rounds: readonly GeneralRound[];
  readonly median_round: number;
  /** onnxruntime in-process by batch size (medium and heavy; for the default model, its cost per batch). */
  readonly raw_batches: readonly { readonly batch: number; readonly ms_per_run: number; readonly rows_per_s: number }[];
  readonly environment: Readonly<Record<string, unknown>>;
}

/** The fields every record must carry (the JSON contract). */
export const REQUIRED_FIELDS = [
  'model',
  'limit_kind',
  'limit_rows_per_s',
  'service_rows_per_s',
  'naive_rows_per_s',
  'ratio_vs_limit',
  'ratio_vs_naive',
  'p50_ms',
  'p99_ms_half_load',
] as const satisfies readonly (keyof BenchRecord)[];
