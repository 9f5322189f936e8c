import type { EvalMail } from './corpus.js';
import { errorRate, profileCheckpoints, profileGoal, type GoalResult, type ProfileCheckpoint } from './metrics.js';
import { PROFILES, type Profile, type ProfileKind } from './profiles.js';
import type { UserRun } from './prequential.js';

export interface UserCheckpointReport {
  feedback: number;
  reached: boolean;
  stream_mails: number;
  stream_mistakes: number;
  held_out: number | null;
  error_general: number | null;
  error_personal: number | null;
  error_fused: number | null;
  /** Time waited for the user's feedback to be applied before measuring; null when not waited. */
  settle_ms: number | null;
}

export interface UserReport {
  user_id: string;
  profile: string;
  stream_mails_planned: number;
  slice_in_stream: number;
  held_out_mails: number;
  slice_in_held_out: number;
  stream_mails_seen: number;
  stream_mistakes: number;
  feedback: number;
  rejected: number;
  /** Time waited for feedback to be applied, over the user's checkpoints (part of elapsed_s). */
  settle_ms: number;
  elapsed_s: number;
  checkpoints: UserCheckpointReport[];
}

export interface ProfileReport {
  profile: string;
  kind: ProfileKind;
  description: string;
  slice: { description: string; mails: number; general_held_out: number };
  users: string[];
  checkpoints: ProfileCheckpoint[];
  goal: GoalResult;
}

/** The `--json` document. Errors are fractions of the held-out mails answered (0.05 = 5%). */
export interface PersonalizationReport {
  suite: 'personalization';
  created_at: string;
  /** `updater`: asked whether a user's feedback was applied before each checkpoint; null when not waited for. */
  platform: { address: string; started_by_eval: boolean; updater: string | null };
  tenant: string;
  run_id: string;
  settings: {
    seed: number;
    users_per_profile: number;
    stream_length: number;
    held_out: number;
    feedback_share: number;
    checkpoints: number[];
    fused_strategy: string;
    input: string;
    quick: boolean;
  };
  corpus: { source: string; mails: number; general_held_out: number };
  profiles: ProfileReport[];
  users: UserReport[];
  /** null when some goal could not be judged and none failed. */
  goals_met: boolean | null;
  /** Time users waited for their feedback to be applied, summed over users (who run concurrently). */
  settle_ms: number;
  elapsed_s: number;
}

export interface ReportInput {
  runs: readonly UserRun[];
  mails: readonly EvalMail[];
  corpusSource: string;
  settings: PersonalizationReport['settings'];
  platform: PersonalizationReport['platform'];
  tenant: string;
  runId: string;
  elapsedMs: number;
  profiles?: readonly Profile[] | undefined;
  now?: Date | undefined;
}

function userReport(run: UserRun): UserReport {
  const { user } = run;
  return {
    user_id: user.id,
    profile: user.profile.name,
    stream_mails_planned: user.stream.length,
    slice_in_stream: user.sliceInStream,
    held_out_mails: user.heldOut.length,
    slice_in_held_out: user.sliceInHeldOut,
    stream_mails_seen: run.streamMails,
    stream_mistakes: run.mistakes,
    feedback: run.feedback,
    rejected: run.rejected,
    settle_ms: Math.round(run.settleMs),
    elapsed_s: Math.round(run.elapsedMs / 100) / 10,
    checkpoints: run.checkpoints.map((c) => ({
      feedback: c.feedback,
      reached: c.reached,
      stream_mails: c.streamMails,
      stream_mistakes: c.mistakes,
      held_out: c.measures.general?.measured ?? null,
      error_general: c.measures.general ? errorRate(c.measures.general.wrong, c.measures.general.measured) : null,
      error_personal: c.measures.personal ? errorRate(c.measures.personal.wrong, c.measures.personal.measured) : null,
      error_fused: c.measures.fused ? errorRate(c.measures.fused.wrong, c.measures.fused.measured) : null,
      settle_ms: c.settleMs === undefined ? null : Math.round(c.settleMs),
    })),
  };
}

export function buildReport(input: ReportInput): PersonalizationReport {
  const profiles: ProfileReport[] = [];
  for (const profile of input.profiles ?? PROFILES) {
    const runs = input.runs.filter((r) => r.user.profile.name === profile.name);
    if (runs.length === 0) continue;
    const slice = input.mails.filter(profile.inSlice);
    const checkpoints = profileCheckpoints(runs, input.settings.checkpoints);
    profiles.push({
      profile: profile.name,
      kind: profile.kind,
      description: profile.description,
      slice: { description: profile.slice, mails: slice.length, general_held_out: slice.filter((m) => m.generalHeldOut).length },
      users: runs.map((r) => r.user.id),
      checkpoints,
      goal: profileGoal(profile.kind, checkpoints),
    });
  }
  const verdicts = profiles.map((p) => p.goal.met);
  return {
    suite: 'personalization',
    created_at: (input.now ?? new Date()).toISOString(),
    platform: input.platform,
    tenant: input.tenant,
    run_id: input.runId,
    settings: input.settings,
    corpus: { source: input.corpusSource, mails: input.mails.length, general_held_out: input.mails.filter((m) => m.generalHeldOut).length },
    profiles,
    users: input.runs.map(userReport),
    goals_met: verdicts.includes(false) ? false : verdicts.includes(null) ? null : true,
    settle_ms: Math.round(input.runs.reduce((sum, r) => sum + r.settleMs, 0)),
    elapsed_s: Math.round(input.elapsedMs / 100) / 10,
  };
}
