/**
 * The general model as the updater sees it: which version is served, how its outputs become the
 * personal model's input (the same form fusion records in FeedbackRecorded), and pairing rules.
 */
import { v1 } from '@aimass/proto';
import type { GeneralRef } from './ids.js';

export function sameGeneral(a: GeneralRef | undefined, b: GeneralRef | undefined): boolean {
  return a !== undefined && b !== undefined && a.name === b.name && a.version === b.version;
}

export function describeGeneral(ref: GeneralRef | undefined): string {
  return ref ? `${ref.name || '(unnamed)'} version ${ref.version || '(none)'}` : '(none)';
}

/**
 * The version of `name` that answers a request naming no version, from ListModels: the default
 * model's flagged version when `name` is empty or is the default model, else the newest version of
 * `name` that is loaded (what the general model resolves an empty version to). Undefined when none
 * is loaded.
 */
export function servedVersion(models: readonly v1.GeneralModelInfo[], name: string): GeneralRef | undefined {
  const flagged = models.find((m) => m.isDefault && m.model && (name === '' || m.model.name === name));
  if (flagged?.model) return { name: flagged.model.name, version: flagged.model.version };
  if (name === '') return undefined;
  let best: GeneralRef | undefined;
  for (const m of models) {
    if (!m.model || m.model.name !== name || m.state !== v1.ModelState.MODEL_STATE_READY) continue;
    if (!best || compareVersions(m.model.version, best.version) > 0) best = { name: m.model.name, version: m.model.version };
  }
  return best;
}

/** Numeric versions compare as numbers (Triton layout), anything else as text. */
export function compareVersions(a: string, b: string): number {
  const na = /^\d+$/.test(a) ? Number(a) : NaN;
  const nb = /^\d+$/.test(b) ? Number(b) : NaN;
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Smallest probability a logit is derived from: log(1e-7) ≈ -16 keeps sums finite. */
const MIN_PROBABILITY = 1e-7;
/** Logits are clipped to ±this, far beyond any probability a float32 can tell apart from 0 or 1. */
const MAX_ABS_LOGIT = 40;

const clip = (x: number) => Math.max(-MAX_ABS_LOGIT, Math.min(MAX_ABS_LOGIT, x));

/**
 * The general model's logits referenced to class 0 (its logit is 0), the form personal models
 * learn on and fusion records: the general model reports log-probabilities, -Infinity for one that
 * underflowed, so missing or non-finite logits are rebuilt from the probabilities.
 */
export function referencedLogits(logits: readonly number[], probabilities: readonly number[]): number[] {
  const usable = logits.length === probabilities.length && logits.length > 0 && logits.every(Number.isFinite);
  const source = usable ? logits : probabilities.map((p) => Math.log(Math.max(MIN_PROBABILITY, p)));
  const z0 = source[0] ?? 0;
  return source.map((z, i) => (i === 0 ? 0 : clip(z - z0)));
}

/** A Classify result as a GeneralOutput, the personal model's input. */
export function generalOutputOf(model: GeneralRef, result: v1.ClassifyResult): v1.GeneralOutput {
  return {
    model: { name: model.name, version: model.version },
    logits: referencedLogits(result.logits, result.probabilities),
    probabilities: result.probabilities,
    embedding: result.embedding,
  };
}
