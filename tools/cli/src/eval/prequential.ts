import { Prng, murmur3 } from '@aimass/ml';
import type { EvalMail, Label } from './corpus.js';
import type { SimulatedUser } from './profiles.js';

/** What the evaluation measures on held-out mail: the general model alone, the personal model alone, fused. */
export type MeasuredStrategy = 'general' | 'personal' | 'fused';
export const MEASURED: readonly MeasuredStrategy[] = ['general', 'personal', 'fused'];

/** A prediction the user sees, or the platform's refusal of this one mail (e.g. too large). */
export type PredictOutcome = { predictionId: string; label: string } | { rejected: string };

/** A measured prediction: its label (undefined when the mail was refused, with why) and the fallbacks it reported. */
export interface MeasuredOutcome {
  label: string | undefined;
  fallbacks: readonly string[];
  /** The strategy the platform says it applied (after fallbacks), when it says. */
  applied?: string | undefined;
  rejected?: string | undefined;
}

/**
 * Refusals of single mails are expected (an oversized mail); refusing many means the calls
 * themselves are wrong (a bad tenant, user id or strategy), and measuring on would only count them.
 */
const MAX_REJECTED_SHARE = 0.1;
const MIN_REJECTED_TO_STOP = 10;

export class TooManyRejectionsError extends Error {
  override name = 'TooManyRejectionsError';
}

function checkRejections(what: string, rejected: number, total: number, last: string | undefined): void {
  if (rejected >= MIN_REJECTED_TO_STOP && rejected > MAX_REJECTED_SHARE * total) {
    throw new TooManyRejectionsError(`the platform refused ${rejected} of ${total} ${what}; the last: ${last ?? 'no reason given'}`);
  }
}

/**
 * The platform as the evaluation uses it: the public API (see target.ts for the SDK version).
 * Calls that fail for reasons other than one mail being refused throw and end the run: a
 * measurement with holes would not be comparable.
 */
export interface EvalTarget {
  /** The prediction the user sees: the fused strategy. */
  predict(userId: string, mail: EvalMail): Promise<PredictOutcome>;
  /** Predictions of `mails` under one strategy, in order. */
  predictMany(userId: string, mails: readonly EvalMail[], strategy: MeasuredStrategy): Promise<MeasuredOutcome[]>;
  feedback(userId: string, predictionId: string, label: Label, idempotencyKey: string): Promise<void>;
  /**
   * Resolves once the user's feedback sent so far is applied to their model. Called before each
   * checkpoint's measurement (not after each feedback: a user's next predictions racing the
   * update is what real users see, but a checkpoint measures the model that feedback made).
   * Absent where Feedback trains before it returns.
   */
  settle?(userId: string, signal?: AbortSignal): Promise<void>;
}

export interface UserHooks {
  /**
   * Runs before a user's first call. The seam for consent (issue 6): personalization will need
   * the user's `personalization` consent, recorded here through the privacy API.
   */
  prepareUser?(user: SimulatedUser): Promise<void>;
}

export interface StrategyMeasure {
  /** Held-out mails answered. */
  measured: number;
  /** Of those, answered with a label other than the user's. */
  wrong: number;
  /** Held-out mails the platform refused. */
  rejected: number;
  /** Fallback reasons reported, with how many predictions reported each. */
  fallbacks: Record<string, number>;
  /** Strategies the platform applied, with how many predictions each. */
  applied: Record<string, number>;
}

export interface UserCheckpoint {
  /** Feedback events the user had sent when measured (0: before any). */
  feedback: number;
  /** False when the stream ended before this many feedback events. */
  reached: boolean;
  /** Stream mails predicted so far. */
  streamMails: number;
  /** Of those, predicted wrongly. */
  mistakes: number;
  measures: Partial<Record<MeasuredStrategy, StrategyMeasure>>;
  /** Time spent waiting for the user's feedback to be applied before measuring (the target's `settle`); absent when not waited. */
  settleMs?: number | undefined;
}

export interface UserRun {
  user: SimulatedUser;
  checkpoints: UserCheckpoint[];
  streamMails: number;
  feedback: number;
  mistakes: number;
  /** Stream mails the platform refused (not shown to the user, no feedback). */
  rejected: number;
  /** Time spent waiting for feedback to be applied, over all checkpoints (part of elapsedMs). */
  settleMs: number;
  elapsedMs: number;
}

export interface PrequentialSettings {
  /** Feedback counts to measure at, ascending; 0 is measured in any case. */
  checkpoints: readonly number[];
  /** Chance that the user confirms a correct answer. */
  feedbackShare: number;
  seed: number;
  /** Stops the run between two calls. */
  signal?: AbortSignal | undefined;
}

/** Counts of wrong answers, refusals and fallbacks, for one strategy on one user's held-out mail. */
export function measure(user: SimulatedUser, mails: readonly EvalMail[], outcomes: readonly MeasuredOutcome[]): StrategyMeasure {
  if (outcomes.length !== mails.length) throw new Error(`expected ${mails.length} predictions, got ${outcomes.length}`);
  const result: StrategyMeasure = { measured: 0, wrong: 0, rejected: 0, fallbacks: {}, applied: {} };
  outcomes.forEach((o, i) => {
    if (o.label === undefined) {
      result.rejected++;
      return;
    }
    result.measured++;
    if (o.label !== user.label(mails[i]!)) result.wrong++;
    for (const reason of new Set(o.fallbacks)) result.fallbacks[reason] = (result.fallbacks[reason] ?? 0) + 1;
    if (o.applied !== undefined) result.applied[o.applied] = (result.applied[o.applied] ?? 0) + 1;
  });
  return result;
}

/**
 * One user, prequentially: each stream mail is predicted (what the user would see), and the user
 * sends feedback on every mistake and, with probability `feedbackShare`, on a correct answer, the
 * way people occasionally confirm "not spam". Whenever the feedback count reaches a checkpoint the
 * stream pauses, the target settles (the user's feedback is applied) and the user's held-out mail
 * is measured under each strategy. The stream stops at the last checkpoint.
 */
export async function runUser(
  user: SimulatedUser,
  target: EvalTarget,
  settings: PrequentialSettings,
  hooks: UserHooks = {},
  onCheckpoint?: (user: SimulatedUser, checkpoint: UserCheckpoint) => void,
): Promise<UserRun> {
  const started = performance.now();
  const checkpoints = [...new Set(settings.checkpoints.filter((c) => c > 0))].sort((a, b) => a - b);
  const last = checkpoints[checkpoints.length - 1] ?? 0;
  // Per user, so users running concurrently do not change each other's draws; keyed by profile
  // and index rather than the id (which carries the run id), so runs with one seed are paired:
  // the same users, streams and draws whatever the run id or the fused strategy.
  const rng = new Prng(murmur3(`${user.profile.name}/${user.index}`, settings.seed >>> 0));
  const done: UserCheckpoint[] = [];
  let streamMails = 0;
  let feedback = 0;
  let mistakes = 0;
  let rejected = 0;
  let settleMs = 0;

  const measureNow = async (at: number) => {
    let waited: number | undefined;
    if (at > 0 && target.settle) {
      settings.signal?.throwIfAborted();
      const t0 = performance.now();
      await target.settle(user.id, settings.signal);
      waited = performance.now() - t0;
      settleMs += waited;
    }
    const measures: UserCheckpoint['measures'] = {};
    for (const strategy of MEASURED) {
      settings.signal?.throwIfAborted();
      const outcomes = await target.predictMany(user.id, user.heldOut, strategy);
      const m = measure(user, user.heldOut, outcomes);
      checkRejections(`held-out mails of ${user.id} (${strategy})`, m.rejected, user.heldOut.length, outcomes.find((o) => o.rejected)?.rejected);
      measures[strategy] = m;
    }
    const checkpoint: UserCheckpoint = { feedback: at, reached: true, streamMails, mistakes, measures, settleMs: waited };
    done.push(checkpoint);
    onCheckpoint?.(user, checkpoint);
  };

  await hooks.prepareUser?.(user);
  await measureNow(0);
  for (const mail of user.stream) {
    if (feedback >= last) break;
    settings.signal?.throwIfAborted();
    const outcome = await target.predict(user.id, mail);
    if ('rejected' in outcome) {
      rejected++;
      checkRejections(`stream mails of ${user.id}`, rejected, streamMails + rejected, outcome.rejected);
      continue;
    }
    streamMails++;
    const truth = user.label(mail);
    const wrong = outcome.label !== truth;
    if (wrong) mistakes++;
    if (!wrong && !(rng.nextFloat() < settings.feedbackShare)) continue;
    // One key per (user, mail): a retried or repeated run's feedback is recorded once.
    await target.feedback(user.id, outcome.predictionId, truth, `${user.id}/${mail.key}`);
    feedback++;
    if (checkpoints.includes(feedback)) await measureNow(feedback);
  }
  for (const c of checkpoints) {
    if (!done.some((d) => d.feedback === c)) done.push({ feedback: c, reached: false, streamMails, mistakes, measures: {} });
  }
  return { user, checkpoints: done, streamMails, feedback, mistakes, rejected, settleMs, elapsedMs: performance.now() - started };
}

/** Runs users `concurrency` at a time; results in the users' order. */
export async function runUsers(
  users: readonly SimulatedUser[],
  run: (user: SimulatedUser) => Promise<UserRun>,
  concurrency: number,
): Promise<UserRun[]> {
  const results: UserRun[] = new Array(users.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < users.length && !failed) {
      const i = next++;
      try {
        results[i] = await run(users[i]!);
      } catch (err) {
        // No new users once one failed: the run is over, only the ones in flight finish.
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, users.length)) }, worker));
  return results;
}
