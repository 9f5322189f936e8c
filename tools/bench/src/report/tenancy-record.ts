import type { GoalCheck } from './personal-record.js';

/** Issue 7: tenant B's Predict p99 with tenant A flooding, at most this many times its p99 alone. */
export const NEIGHBOUR_P99_RATIO_GOAL = 2;

export interface TenantLoadFigures {
  /** Successful Predicts per second in the measured window. */
  readonly requests_per_s: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  /** Failed calls by gRPC status name. */
  readonly errors: Readonly<Record<string, number>>;
  /** Mean time per stage as fusion's answers report it (provenance timings), to show where time goes. */
  readonly stage_means_ms: Readonly<Record<string, number>>;
  /** CPU of the load process making these calls, in cores (it shares the machine with the services). */
  readonly client_cpu_cores: number;
  /** CPU each service process used in the window (every thread), in cores: where the machine's time went. */
  readonly service_cpu_cores: Readonly<Record<string, number>>;
}

/** What `npm run bench -- tenancy --json FILE` writes. */
export interface TenancyRecord {
  readonly suite: 'tenancy';
  /** p99(B's Predict with A flooding) / p99(B's Predict alone), same offered load. */
  readonly neighbour_p99_ratio: number;
  readonly goals: readonly GoalCheck[];
  readonly tenant_b: {
    readonly tenant: string;
    /** B's load: an open loop at this rate (latency counted from when each call was due). */
    readonly offered_per_s: number;
    readonly alone: TenantLoadFigures;
    readonly with_flood: TenantLoadFigures;
    /** B alone once more after the flood: far from `alone`, the machine drifted and the ratio is suspect. */
    readonly alone_after: TenantLoadFigures;
  };
  readonly tenant_a: {
    readonly tenant: string;
    readonly quota_per_s: number;
    readonly quota_burst: number;
    /** Closed-loop clients, each sending its next call as soon as the last one was answered or refused. */
    readonly clients: number;
    /** Calls answered OK per second (within the quota). */
    readonly accepted_per_s: number;
    /** Calls refused with RESOURCE_EXHAUSTED per second. */
    readonly refused_per_s: number;
    /** Share of A's calls that were refused. */
    readonly refused_share: number;
    /** How far above its quota A called: (accepted + refused) / quota. */
    readonly offered_vs_quota: number;
    /** Failures other than RESOURCE_EXHAUSTED, by status name. */
    readonly other_errors: Readonly<Record<string, number>>;
    readonly accepted_p99_ms: number;
    readonly client_cpu_cores: number;
    /** Niceness of A's load process (0: it could not be lowered). */
    readonly load_process_niceness: number;
  };
  readonly window_s: number;
  readonly setup: Readonly<Record<string, string>>;
  readonly environment: Readonly<Record<string, unknown>>;
}

export function tenancyGoalChecks(ratio: number): GoalCheck[] {
  return [
    {
      figure: 'neighbour_p99_ratio',
      goal: `<= ${NEIGHBOUR_P99_RATIO_GOAL}`,
      value: Number.isFinite(ratio) ? ratio : null,
      met: Number.isFinite(ratio) ? ratio <= NEIGHBOUR_P99_RATIO_GOAL : null,
    },
  ];
}
