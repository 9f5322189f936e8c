import { AiMassError, InvalidArgumentError, UnavailableError, type FeedbackResult, type PredictionResult, type Stage } from '@aimass/sdk';
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

/** The exit code for a failure (see exit-codes.ts). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (err instanceof UnavailableError || err instanceof PlatformUnavailableError) return EXIT_UNAVAILABLE;
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

/**
 * One line for stderr: what failed, in the server's words, and what to do about it when there is
 * something obvious to do.
 */
export function errorLine(command: string, err: unknown, address?: string): string {
  const prefix = `aimass ${command}:`;
  if (err instanceof UnavailableError) {
    const hint = address === undefined ? '' : ` — is the platform running at ${address}? Start it with \`aimass dev\` or pass --address`;
    return `${prefix} ${oneLine(err.message)}${hint}`;
  }
  if (err instanceof InvalidArgumentError) return `${prefix} ${oneLine(err.message)}`;
  if (err instanceof AiMassError) {
    const ref = err.errorRef !== undefined && !err.details.includes(err.errorRef) ? ` (ref ${err.errorRef})` : '';
    return `${prefix} ${oneLine(err.message)}${ref}`;
  }
  if (err instanceof UsageError || err instanceof PlatformUnavailableError || err instanceof InputFileError || err instanceof InterruptedError) {
    return `${prefix} ${oneLine(err.message)}`;
  }
  // Not one of ours: a bug, so the stack helps whoever reports it.
  return `${prefix} ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
}

function oneLine(text: string): string {
  // grpc-js ends connection errors with an empty "Resolution note:" when DNS had nothing to say.
  return text.replace(/\s*\n\s*/g, ' ').replace(/\s*Resolution note:\s*$/, '').trim();
}
