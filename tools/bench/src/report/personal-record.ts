import type { SweepPoint } from './record.js';

/** One contender at one concurrency, with what its answers said. */
export interface ContenderFigures {
  readonly concurrency: number;
  readonly rows_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly errors: number;
  readonly error_kinds: Readonly<Record<string, number>>;
  readonly client_cpu_cores: number;
  /** Answers by what they said (predict: applied strategy or fallback; score: status). */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Mean time per stage the answers reported (Predict's provenance timings), ms. */
  readonly stage_mean_ms: Readonly<Record<string, number>>;
}

/** A goal of the issue, and whether this run met it (reported, not enforced). */
export interface GoalCheck {
  readonly figure: string;
  readonly goal: string;
  readonly value: number | null;
  readonly met: boolean | null;
}

export interface LatencyFigures {
  readonly samples: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
}

/** One general-only/fused pair at the headline concurrency, measured back to back. */
export interface FusionRound {
  readonly round: number;
  readonly general_only_rows_per_s: number;
  readonly fused_rows_per_s: number;
  /** fused / general-only of this pair. */
  readonly ratio: number;
}

/** Part A: Predict through fusion against Classify on general-model, same run, same mails. */
export interface FusionFigures {
  readonly headline_concurrency: number;
  /** GeneralModelService.Classify, one mail per call, straight to general-model (the median round's). */
  readonly general_only: ContenderFigures;
  /** InferenceService.Predict through fusion (general + personal + fusion), same mails, Zipf users (the median round's). */
  readonly fused: ContenderFigures;
  /** Every pair at the headline concurrency; fused_vs_general_throughput is the median of their ratios. */
  readonly rounds: readonly FusionRound[];
  /** The round whose ratio is the median: general_only and fused are its figures. */
  readonly median_round: number;
  /** The same Predicts with strategy GENERAL_ONLY: fusion without the personal model (where the difference goes). */
  readonly fusion_strategy_general_only: ContenderFigures | null;
  readonly sweep: { readonly general_only: readonly SweepPoint[]; readonly fused: readonly SweepPoint[] };
  readonly users: {
    readonly count: number;
    readonly traffic_zipf_s: number;
    readonly with_model: number;
    readonly model_share: number;
    readonly examples: { readonly min: number; readonly max: number; readonly zipf_s: number; readonly mean: number };
    /** Share of the Zipf traffic that lands on users with a model (from the distribution). */
    readonly traffic_share_with_model_expected: number;
    /** The same share as the fused run's answers said (applied personal model / all answers). */
    readonly traffic_share_with_model_measured: number | null;
    readonly feedback_calls: number;
    readonly seeding_seconds: number;
  };
  readonly request: string;
}

/** Part B: a million users' models in SQLite, Zipf traffic through personal-model. */
export interface StoreFigures {
  readonly users: number;
  readonly traffic_zipf_s: number;
  readonly concurrency: number;
  readonly store: {
    readonly path: string;
    readonly cached: boolean;
    readonly key: string;
    readonly file_bytes: number;
    readonly build_seconds: number;
    readonly build_users_per_s: number;
    readonly pool_models: number;
    readonly pool_train_seconds: number;
    readonly examples: { readonly min: number; readonly max: number; readonly zipf_s: number; readonly mean: number; readonly histogram: Readonly<Record<string, number>> };
    readonly how: string;
  };
  readonly bytes_per_model: { readonly parameters_mean: number; readonly document_mean: number; readonly file_per_user: number };
  readonly cache: { readonly max_bytes: number; readonly revalidate_ms: number; readonly setting: string };
  /** Measured once Zipf traffic filled the cache (`fill_seconds`) and half of it turned over (`steady_state`). */
  readonly zipf: ContenderFigures & CacheWindow & { readonly fill_seconds: number; readonly steady_state: boolean };
  readonly all_hits: ContenderFigures & CacheWindow & { readonly hot_set_users: number; readonly hot_set_bytes: number };
  readonly zipf_vs_all_hits_throughput: number;
  readonly cold_load: LatencyFigures & {
    readonly where: string;
    readonly parts: { readonly pointer_read: LatencyFigures; readonly version_read: LatencyFigures; readonly deserialize: LatencyFigures };
    readonly parameter_bytes_mean: number;
  };
}

/** The service's cache counters over a measured window. */
export interface CacheWindow {
  readonly cache_hit_ratio: number;
  readonly cache_hits: number;
  readonly cache_misses: number;
  /** Parameters read from the store (cold loads). */
  readonly store_loads: number;
  /** Cached entries re-checked against the store (one point read each). */
  readonly revalidations: number;
  readonly evictions: number;
  readonly cache_entries_after: number;
  readonly cache_bytes_after: number;
}

/** The `personal` suite's JSON: the four fields first, then what explains them. */
export interface PersonalRecord {
  readonly suite: 'personal';
  readonly fused_vs_general_throughput: number | null;
  readonly cache_hit_ratio: number | null;
  readonly cold_load_p99_ms: number | null;
  /** Mean bytes of a stored model: its version document (parameters and record). See store.bytes_per_model for the parts. */
  readonly bytes_per_model: number | null;
  readonly goals: readonly GoalCheck[];
  readonly fusion: FusionFigures | null;
  readonly store: StoreFigures | null;
  readonly setup: Readonly<Record<string, unknown>>;
  readonly environment: Readonly<Record<string, unknown>>;
}

export const PERSONAL_REQUIRED_FIELDS = ['fused_vs_general_throughput', 'cache_hit_ratio', 'cold_load_p99_ms', 'bytes_per_model'] as const satisfies readonly (keyof PersonalRecord)[];

export const FUSED_THROUGHPUT_GOAL = 0.7;
export const COLD_LOAD_P99_GOAL_MS = 5;

/** The goals of the Benchmark section, checked against the figures. */
export function goalChecks(fusedRatio: number | null, coldLoadP99: number | null): GoalCheck[] {
  return [
    {
      figure: 'fused_vs_general_throughput',
      goal: `>= ${FUSED_THROUGHPUT_GOAL}`,
      value: fusedRatio,
      met: fusedRatio === null ? null : fusedRatio >= FUSED_THROUGHPUT_GOAL,
    },
    {
      figure: 'cold_load_p99_ms',
      goal: `<= ${COLD_LOAD_P99_GOAL_MS}`,
      value: coldLoadP99,
      met: coldLoadP99 === null ? null : coldLoadP99 <= COLD_LOAD_P99_GOAL_MS,
    },
  ];
}
