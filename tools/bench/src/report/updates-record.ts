import type { GoalCheck } from './personal-record.js';

/** Freshness: Feedback returned → the first Predict for that user showing a newer personal model. */
export interface FreshnessFigures {
  /** Feedback events timed (their Feedback returned inside the measured window). */
  readonly samples: number;
  readonly mean_ms: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  /** Samples whose user had no model before (version 0 → 1). */
  readonly first_model_samples: number;
  /** Samples never reflected within `timeout_ms`: counted at the time waited, so they raise the percentiles rather than vanish. */
  readonly timed_out: number;
  readonly timeout_ms: number;
  /** Users whose every event was timed, one at a time. */
  readonly probe_users: number;
  readonly poll_ms: number;
  /** Predicts per sample, the reflecting one included. */
  readonly polls_per_sample_mean: number;
  /** Poll answers that could not show a version (personal stage timed out or failed). */
  readonly polls_without_version: number;
  readonly definition: string;
  /** [seconds since the window opened at Feedback's return, freshness ms] per sample. */
  readonly series: readonly (readonly [number, number])[];
}

export interface CallFigures {
  readonly calls: number;
  readonly per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
}

export interface FeedbackFigures {
  readonly offered_per_s: number;
  /** Feedback calls answered `accepted` inside the window, per second. */
  readonly achieved_per_s: number;
  readonly accepted_in_window: number;
  readonly accepted_total: number;
  readonly duplicates: number;
  /** Events due but not sent: too many calls in flight already, or no user free to take one. */
  readonly not_sent: { readonly overload: number; readonly no_user: number };
  readonly errors: number;
  readonly error_kinds: Readonly<Record<string, number>>;
  /** The Feedback calls (inside the window): fusion answers once JetStream stored the event. */
  readonly feedback_call: CallFigures;
  readonly users: number;
  readonly users_retired: number;
  readonly how: string;
  /** Accepted Feedback calls per second of the window. */
  readonly per_second: readonly number[];
}

export interface PredictFigures {
  /** Closed-loop Predict clients running throughout (users Zipf over the feedback users). */
  readonly clients: number;
  readonly background: CallFigures;
  /** The Predict before each feedback event (it gives the prediction id the feedback names). */
  readonly before_feedback: CallFigures;
  /** The probes' polls. */
  readonly polls: CallFigures;
  /** Every Predict of the window, per second. */
  readonly all_per_s: number;
  readonly errors: number;
  readonly error_kinds: Readonly<Record<string, number>>;
  /** Background answers by what they said (`applied:<strategy>`, `fallback:<reason>`). */
  readonly outcomes: Readonly<Record<string, number>>;
}

export interface UpdaterFigures {
  readonly events_per_s: number;
  readonly applied_in_window: number;
  /** The updater's GetTrainingState `pending_events` (received not applied + not yet received) when the window opened and closed. */
  readonly pending_at_window_start: number;
  readonly lag_at_end: number;
  /** After the load stopped: whether every accepted event got applied, and how long it took. */
  readonly drained: boolean;
  readonly drain_seconds: number;
  readonly pending_after_drain: number;
  /** Failed GetTrainingState calls (the backlog readings), by kind. */
  readonly training_state_errors: Readonly<Record<string, number>>;
  readonly how: string;
  /** [seconds since the window opened, pending events], about once a second from the start of the load. */
  readonly pending_series: readonly (readonly [number, number])[];
}

/** The `updates` suite's JSON: the four fields first, then the context, then what explains them. */
export interface UpdatesRecord {
  readonly suite: 'updates';
  readonly freshness_p50_ms: number | null;
  readonly freshness_p99_ms: number | null;
  readonly events_per_s: number;
  readonly lag_at_end: number;
  readonly offered_feedback_per_s: number;
  readonly achieved_feedback_per_s: number;
  readonly users: number;
  readonly predict_per_s: number;
  readonly freshness_samples: number;
  readonly duration_s: number;
  readonly warmup_s: number;
  readonly goals: readonly GoalCheck[];
  readonly freshness: FreshnessFigures;
  readonly feedback: FeedbackFigures;
  readonly predict: PredictFigures;
  readonly updater: UpdaterFigures;
  /** The bench process's own event-loop delay: it times every call, so its lag adds to each figure. */
  readonly bench_event_loop_delay_ms: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly setup: Readonly<Record<string, unknown>>;
  readonly environment: Readonly<Record<string, unknown>>;
}

export const UPDATES_REQUIRED_FIELDS = ['freshness_p50_ms', 'freshness_p99_ms', 'events_per_s', 'lag_at_end'] as const satisfies readonly (keyof UpdatesRecord)[];

export const FRESHNESS_P99_GOAL_MS = 1000;

export function updatesGoalChecks(freshnessP99: number | null): GoalCheck[] {
  return [{ figure: 'freshness_p99_ms', goal: `<= ${FRESHNESS_P99_GOAL_MS}`, value: freshnessP99, met: freshnessP99 === null ? null : freshnessP99 <= FRESHNESS_P99_GOAL_MS }];
}
