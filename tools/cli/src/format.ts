import {
  AiMassError,
  InvalidArgumentError,
  UnavailableError,
  type FeedbackResult,
  type PredictionResult,
  type RefitJob,
  type Stage,
  type TrainingState,
} from '@aimass/sdk';
import { UsageError } from './args.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE } from './exit-codes.js';

const STAGE_ORDER: readonly Stage[] = ['admission', 'consent', 'general_model', 'personal_model', 'fusion', 'total'];

function ms(value: number): string {
  return value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
}

function prob(p: number): string {
  return p.toFixed(4);
}

function modelName(name: string, version: string): string {
  return version === '' ? name : `${name}@${version}`;
}

/** A prediction for people: the answer first, then how it was made. */
export function formatPrediction(r: PredictionResult): string {
  const top = r.probabilities[r.label];
  const lines = [`${r.label}${top === undefined ? '' : `  (p=${prob(top)})`}`];
  const width = Math.max(...r.probabilityList.map((p) => p.label.length), 5);
  for (const p of r.probabilityList) lines.push(`  ${p.label.padEnd(width)}  ${prob(p.probability)}`);
  const rows: [string, string][] = [];
  rows.push(['prediction', r.predictionId]);
  const { provenance: pv } = r;
  const requested = pv.requestedStrategy === 'unspecified' ? 'tenant default' : pv.requestedStrategy;
  rows.push(['strategy', `${pv.appliedStrategy} (asked: ${requested})`]);
  if (pv.models.length > 0) {
    rows.push(['models', pv.models.map((m) => `${m.role} ${modelName(m.name, m.version)} weight ${m.weight.toFixed(2)}`).join(' · ')]);
  }
  rows.push(['fallbacks', pv.fallbacks.length === 0 ? 'none' : pv.fallbacks.map((f) => `${f.reason} (${f.role})${f.detail ? `: ${f.detail}` : ''}`).join(' · ')]);
  const timings = STAGE_ORDER.filter((s) => pv.timingsMs[s] !== undefined).map((s) => `${s} ${ms(pv.timingsMs[s]!)}`);
  if (timings.length > 0) rows.push(['timings', timings.join(' · ')]);
  for (const [name, c] of [
    ['general', r.general],
    ['personal', r.personal],
  ] as const) {
    if (!c) continue;
    const p = c.probabilities[c.label];
    rows.push([name, `${c.label}${p === undefined ? '' : ` (p=${prob(p)})`}${c.model ? ` from ${modelName(c.model.name, c.model.version)}` : ''}`]);
  }
  for (const [k, v] of rows) lines.push(`${k.padEnd(11)} ${v}`);
  return lines.join('\n');
}

/** The prediction as JSON: the SDK's typed result. */
export function predictionJson(r: PredictionResult): string {
  return JSON.stringify(r, null, 2);
}

export function formatFeedback(r: FeedbackResult): string {
  const what = !r.accepted ? 'not accepted' : r.duplicate ? 'already recorded (same idempotency key)' : 'recorded';
  return `feedback ${what}: event ${r.eventId || '-'}, idempotency key ${r.idempotencyKey}`;
}

export function feedbackJson(r: FeedbackResult): string {
  return JSON.stringify(r, null, 2);
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function time(t: Date | undefined): string {
  return t === undefined ? '-' : t.toISOString();
}

function generalOf(m: { name: string; version: string } | undefined): string {
  return m === undefined || m.name === '' ? "the tenant's current general model" : modelName(m.name, m.version);
}

/** A refit job, as `models refit` prints it. */
export function formatRefitJob(job: RefitJob): string {
  const rows: [string, string][] = [
    ['job', job.jobId],
    ['state', job.state],
    ['users', `${job.usersDone} of ${job.usersTotal} done, ${job.usersFailed} failed`],
    ['general', generalOf(job.generalModel)],
    ['started', time(job.startedAt)],
    ['finished', time(job.finishedAt)],
  ];
  return rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join('\n');
}

/** One line per job, for lists and progress. */
export function formatJobLine(job: RefitJob): string {
  const finished = job.finishedAt === undefined ? '' : `, finished ${time(job.finishedAt)}`;
  return `${job.jobId}  ${job.state}: ${job.usersDone}/${job.usersTotal} users done, ${job.usersFailed} failed, on ${generalOf(job.generalModel)}, started ${time(job.startedAt)}${finished}`;
}

/** `models state`: the tenant's lag, the user's model when asked about, the refit jobs. */
export function formatTrainingState(state: TrainingState, askedUser: boolean): string {
  const rows: [string, string][] = [['tenant', `${count(state.pendingEvents, 'feedback event')} not yet received by the updater`]];
  const u = state.user;
  if (u !== undefined) {
    rows.push(
      ['user', `pseudonym ${u.userPseudonym}`],
      ['version', u.currentVersion === 0 ? 'none yet (no personal model)' : `${u.currentVersion}, paired with ${generalOf(u.generalModel)}`],
      ['pending', `${count(u.pendingEvents, 'event')} received, not yet applied`],
      ['applied', u.lastAppliedSequence === 0 ? 'nothing yet' : `up to stream sequence ${u.lastAppliedSequence}`],
      ['trained', u.lastTrainedAt === undefined ? 'never' : time(u.lastTrainedAt)],
      ['refit', u.refitPending ? 'queued or running' : 'none pending'],
    );
  } else if (askedUser) {
    rows.push(['user', 'unknown to the updater']);
  }
  rows.push(['jobs', state.jobs.length === 0 ? 'none' : '']);
  const lines = rows.map(([k, v]) => `${k.padEnd(11)} ${v}`.trimEnd());
  for (const job of state.jobs) lines.push(`  ${formatJobLine(job)}`);
  return lines.join('\n');
}

/** A refit job or training state as JSON: the SDK's typed result (times as ISO strings). */
export function trainingJson(value: RefitJob | TrainingState): string {
  return JSON.stringify(value, null, 2);
}

/** The exit code for a failure (see exit-codes.ts). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (err instanceof UnavailableError || err instanceof PlatformUnavailableError) return EXIT_UNAVAILABLE;
  // The address answers but serves something else (e.g. fusion's given for the updater's).
  if (err instanceof AiMassError && err.code === 'UNIMPLEMENTED') return EXIT_UNAVAILABLE;
  if (err instanceof InterruptedError) return EXIT_INTERRUPTED;
  return EXIT_FAILURE;
}

/** The platform cannot serve what the command needs (not started, or without the public API). */
export class PlatformUnavailableError extends Error {
  override name = 'PlatformUnavailableError';
}

/** The user stopped a long command (Ctrl-C). */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

/** A file the user named could not be read. */
export class InputFileError extends Error {
  override name = 'InputFileError';
}

/** A file the user named could not be written. */
export class OutputFileError extends Error {
  override name = 'OutputFileError';
}

/** Training did not get where a command waited for it (the updater lagging, a refit job failed). */
export class TrainingWaitError extends Error {
  override name = 'TrainingWaitError';
}

/** What a command talks to, for the hint when it cannot be reached. */
export type ServiceKind = 'platform' | 'updater' | 'privacy';

function unreachableHint(address: string, service: ServiceKind): string {
  switch (service) {
    case 'updater':
      return ` — is the updater running at ${address}? In the one-process mode \`aimass dev\` starts it; else pass --address or set AIMASS_UPDATER_ADDRESS`;
    case 'privacy':
      return ` — is the privacy service running at ${address}? In the one-process mode \`aimass dev\` starts it; else pass --address or set AIMASS_PRIVACY_ADDRESS`;
    default:
      return ` — is the platform running at ${address}? Start it with \`aimass dev\` or pass --address`;
  }
}

function unimplementedHint(address: string, service: ServiceKind): string {
  switch (service) {
    case 'updater':
      return ` — ${address} does not serve the updater's admin API (aimass.v1.UpdaterAdminService): is it the updater's address?`;
    case 'privacy':
      return ` — ${address} does not serve this call of the privacy API (aimass.v1.PrivacyService): is it the privacy service's address, and a version that has it?`;
    default:
      return ` — ${address} does not serve the public API (aimass.v1.InferenceService): is it fusion's address?`;
  }
}

/**
 * One line for stderr: what failed, in the server's words, and what to do about it when there is
 * something obvious to do.
 */
export function errorLine(command: string, err: unknown, address?: string, service: ServiceKind = 'platform'): string {
  const prefix = `aimass ${command}:`;
  if (err instanceof UnavailableError) {
    return `${prefix} ${oneLine(err.message)}${address === undefined ? '' : unreachableHint(address, service)}`;
  }
  if (err instanceof AiMassError && err.code === 'UNIMPLEMENTED') {
    return `${prefix} ${oneLine(err.message)}${address === undefined ? '' : unimplementedHint(address, service)}`;
  }
  if (err instanceof InvalidArgumentError) return `${prefix} ${oneLine(err.message)}`;
  if (err instanceof AiMassError) {
    const ref = err.errorRef !== undefined && !err.details.includes(err.errorRef) ? ` (ref ${err.errorRef})` : '';
    return `${prefix} ${oneLine(err.message)}${ref}`;
  }
  if (
    err instanceof UsageError ||
    err instanceof PlatformUnavailableError ||
    err instanceof InputFileError ||
    err instanceof OutputFileError ||
    err instanceof InterruptedError ||
    err instanceof TrainingWaitError
  ) {
    return `${prefix} ${oneLine(err.message)}`;
  }
  // Not one of ours: a bug, so the stack helps whoever reports it.
  return `${prefix} ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
}

function oneLine(text: string): string {
  // grpc-js ends connection errors with an empty "Resolution note:" when DNS had nothing to say.
  return text.replace(/\s*\n\s*/g, ' ').replace(/\s*Resolution note:\s*$/, '').trim();
}
