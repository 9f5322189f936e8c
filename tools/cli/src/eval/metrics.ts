import type { ProfileKind } from './profiles.js';
import { MEASURED, type MeasuredStrategy, type StrategyMeasure, type UserRun } from './prequential.js';

/** Divergent users: fused error after this many feedback events … */
export const DIVERGENT_GOAL_FEEDBACK = 50;
/** … at most this share of the general model's error on their labels. */
export const DIVERGENT_GOAL_RATIO = 0.5;
/** Neutral users: fused error at most the general model's plus this (0.5 percentage points) at every checkpoint. */
export const NEUTRAL_GOAL_MARGIN = 0.005;
// Errors are ratios of small integers: compare with room for floating-point rounding only.
const EPSILON = 1e-12;

/** One profile at one checkpoint, summed over its users who reached it. Errors are fractions (0.05 = 5%). */
export interface ProfileCheckpoint {
  feedback: number;
  users: number;
  users_reached: number;
  /** Held-out mails measured (general model), over the users who reached the checkpoint. */
  held_out: number;
  error_general: number | null;
  error_personal: number | null;
  error_fused: number | null;
  wrong_general: number;
  wrong_personal: number;
  wrong_fused: number;
  /** Held-out mails the platform refused (counted per strategy, so up to 3 per mail). */
  rejected: number;
  /** Stream mails the users had seen, and how many of those they were shown wrongly. */
  stream_mails: number;
  stream_mistakes: number;
  /** Fallback reasons reported by personal-only and fused predictions on held-out mail. */
  fallbacks_personal: Record<string, number>;
  fallbacks_fused: Record<string, number>;
  /** Strategies the platform applied to the fused predictions (e.g. how a tenant default resolved). */
  applied_fused: Record<string, number>;
}

export interface GoalResult {
  /** The goal in words. */
  goal: string;
  /** null: not measurable (a checkpoint was not reached by every user). */
  met: boolean | null;
  detail: string;
}

function addCounts(into: Record<string, number>, from: Record<string, number> | undefined): void {
  for (const [k, v] of Object.entries(from ?? {})) into[k] = (into[k] ?? 0) + v;
}

export function errorRate(wrong: number, measured: number): number | null {
  return measured > 0 ? wrong / measured : null;
}

/** Pools the users' counts (not their rates), so every held-out mail weighs the same. */
export function profileCheckpoints(runs: readonly UserRun[], checkpoints: readonly number[]): ProfileCheckpoint[] {
  return [0, ...checkpoints.filter((c) => c > 0)].map((feedback) => {
    const reached = runs.map((r) => r.checkpoints.find((c) => c.feedback === feedback)).filter((c) => c?.reached === true);
    const sums = Object.fromEntries(MEASURED.map((s) => [s, { measured: 0, wrong: 0, rejected: 0, fallbacks: {}, applied: {} }])) as Record<MeasuredStrategy, StrategyMeasure>;
    let streamMails = 0;
    let mistakes = 0;
    for (const c of reached) {
      streamMails += c!.streamMails;
      mistakes += c!.mistakes;
      for (const s of MEASURED) {
        const m = c!.measures[s];
        if (!m) continue;
        sums[s].measured += m.measured;
        sums[s].wrong += m.wrong;
        sums[s].rejected += m.rejected;
        addCounts(sums[s].fallbacks, m.fallbacks);
        addCounts(sums[s].applied, m.applied);
      }
    }
    return {
      feedback,
      users: runs.length,
      users_reached: reached.length,
      held_out: sums.general.measured,
      error_general: errorRate(sums.general.wrong, sums.general.measured),
      error_personal: errorRate(sums.personal.wrong, sums.personal.measured),
      error_fused: errorRate(sums.fused.wrong, sums.fused.measured),
      wrong_general: sums.general.wrong,
      wrong_personal: sums.personal.wrong,
      wrong_fused: sums.fused.wrong,
      rejected: sums.general.rejected + sums.personal.rejected + sums.fused.rejected,
      stream_mails: streamMails,
      stream_mistakes: mistakes,
      fallbacks_personal: sums.personal.fallbacks,
      fallbacks_fused: sums.fused.fallbacks,
      applied_fused: sums.fused.applied,
    };
  });
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(2)}%`);

/** The goal for a profile, judged on its pooled checkpoints. */
export function profileGoal(kind: ProfileKind, checkpoints: readonly ProfileCheckpoint[]): GoalResult {
  if (kind === 'divergent') {
    const goal = `fused error after ${DIVERGENT_GOAL_FEEDBACK} feedback events <= ${DIVERGENT_GOAL_RATIO} x general-only error`;
    const c = checkpoints.find((x) => x.feedback === DIVERGENT_GOAL_FEEDBACK);
    if (!c || c.users_reached < c.users || c.error_fused === null || c.error_general === null) {
      return { goal, met: null, detail: `checkpoint ${DIVERGENT_GOAL_FEEDBACK} not reached by every user` };
    }
    const bound = DIVERGENT_GOAL_RATIO * c.error_general;
    return { goal, met: c.error_fused <= bound + EPSILON, detail: `fused ${pct(c.error_fused)} vs bound ${pct(bound)} (general ${pct(c.error_general)})` };
  }
  const goal = `fused error <= general-only error + ${NEUTRAL_GOAL_MARGIN * 100} points at every checkpoint`;
  const parts: string[] = [];
  let met: boolean | null = true;
  for (const c of checkpoints.filter((x) => x.feedback > 0)) {
    if (c.users_reached < c.users || c.error_fused === null || c.error_general === null) {
      parts.push(`@${c.feedback}: not reached by every user`);
      if (met === true) met = null;
      continue;
    }
    const ok = c.error_fused <= c.error_general + NEUTRAL_GOAL_MARGIN + EPSILON;
    if (!ok) met = false;
    parts.push(`@${c.feedback}: fused ${pct(c.error_fused)} vs general ${pct(c.error_general)}${ok ? '' : ' FAIL'}`);
  }
  if (parts.length === 0) return { goal, met: null, detail: 'no checkpoint configured' };
  return { goal, met, detail: parts.join('; ') };
}
