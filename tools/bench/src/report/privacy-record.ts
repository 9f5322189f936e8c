import type { GoalCheck } from './personal-record.js';

/** Issue 6: Erase → complete receipt, p99 under Predict load. */
export const ERASURE_P99_GOAL_MS = 5_000;
/** Issue 6: p50 Predict latency with enforcement on minus off. */
export const CONSENT_OVERHEAD_P50_GOAL_MS = 0.2;

interface Latencies {
  readonly calls: number;
  readonly errors: number;
  readonly error_kinds: Readonly<Record<string, number>>;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly mean_ms: number;
}

/** What `npm run bench -- privacy --json FILE` writes. */
export interface PrivacyRecord {
  readonly suite: 'privacy';
  /** Erase called → receipt COMPLETED (every expected service confirmed), p99 over the erased users. */
  readonly erasure_p99_ms: number;
  /** p50 of Predict with consent enforced and data sealed, minus p50 without, same run, alternating slices. */
  readonly consent_overhead_p50_ms: number;
  readonly goals: readonly GoalCheck[];
  readonly erasure: {
    readonly erased: number;
    readonly concurrency: number;
    /** Erasures that failed or timed out (counted at the timeout in the percentiles). */
    readonly failures: number;
    readonly failure_examples: readonly string[];
    readonly completion_ms: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly mean: number };
    /** The Erase call alone: tombstone written, key destroyed, ErasureRequested stored. */
    readonly erase_call_ms: { readonly p50: number; readonly p99: number };
    readonly receipt_poll_ms: number;
    readonly samples: readonly number[];
    readonly predict_under_erasure: { readonly clients: number; readonly calls: number; readonly errors: number; readonly p50_ms: number; readonly p99_ms: number };
  };
  readonly predict: {
    readonly clients: number;
    readonly slices: readonly ('on' | 'off')[];
    readonly slice_ms: number;
    readonly on: Latencies;
    readonly off: Latencies;
    /** p50 of each stage's server-side time (Predict provenance), per stack. */
    readonly stage_p50_ms: { readonly on: Readonly<Record<string, number>>; readonly off: Readonly<Record<string, number>> };
    /** 400 quantiles of each stack's Predict latency, ascending (for the plot). */
    readonly cdf_on: readonly number[];
    readonly cdf_off: readonly number[];
  };
  readonly users: number;
  readonly seed_feedback_per_user: number;
  readonly setup: Readonly<Record<string, string>>;
  readonly environment: Readonly<Record<string, unknown>>;
}

export function privacyGoalChecks(erasureP99: number, overheadP50: number): GoalCheck[] {
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  return [
    { figure: 'erasure_p99_ms', goal: `<= ${ERASURE_P99_GOAL_MS}`, value: finite(erasureP99), met: Number.isFinite(erasureP99) ? erasureP99 <= ERASURE_P99_GOAL_MS : null },
    {
      figure: 'consent_overhead_p50_ms',
      goal: `<= ${CONSENT_OVERHEAD_P50_GOAL_MS}`,
      value: finite(overheadP50),
      met: Number.isFinite(overheadP50) ? overheadP50 <= CONSENT_OVERHEAD_P50_GOAL_MS : null,
    },
  ];
}
