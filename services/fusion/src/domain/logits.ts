/**
 * Logit-space helpers. Every logit vector fusion handles is referenced to class 0 (its logit is 0),
 * the convention the personal model uses, so vectors from the two models can be added and
 * averaged; softmax is unchanged by the shift.
 */

/** Smallest probability a logit is derived from: log(1e-7) ≈ -16 keeps sums finite. */
export const MIN_PROBABILITY = 1e-7;
/** Logits are clipped to ±this, far beyond any probability a float32 can tell apart from 0 or 1. */
export const MAX_ABS_LOGIT = 40;

const clip = (x: number) => Math.max(-MAX_ABS_LOGIT, Math.min(MAX_ABS_LOGIT, x));

/** Softmax, stable for large logits. */
export function softmax(logits: readonly number[]): number[] {
  if (logits.length === 0) return [];
  let max = -Infinity;
  for (const z of logits) if (z > max) max = z;
  const exps = logits.map((z) => Math.exp(z - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** Index of the largest value; the first one on ties (so ties go to the lower label index). */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** `z - z[0]`, clipped: the class-0-referenced form of any logit vector. */
export function referenceLogits(logits: readonly number[]): number[] {
  const z0 = logits[0] ?? 0;
  return logits.map((z, i) => (i === 0 ? 0 : clip(z - z0)));
}

/** Referenced logits of a probability vector, with probabilities floored so a 0 stays finite. */
export function logitsFromProbabilities(probabilities: readonly number[]): number[] {
  return referenceLogits(probabilities.map((p) => Math.log(Math.max(MIN_PROBABILITY, p))));
}

/**
 * The general model's logits in fusion's form. The general model reports log-probabilities, which
 * are -Infinity for a probability that underflowed to 0; those (or missing logits) are rebuilt from
 * the probabilities so the arithmetic below never sees a NaN.
 */
export function generalLogits(logits: readonly number[], probabilities: readonly number[]): number[] {
  if (logits.length === probabilities.length && logits.length > 0 && logits.every(Number.isFinite)) return referenceLogits(logits);
  return logitsFromProbabilities(probabilities);
}

/** `a + b` element-wise, re-referenced (b may come with any offset). */
export function addLogits(a: readonly number[], b: readonly number[]): number[] {
  return referenceLogits(a.map((x, i) => x + (b[i] ?? 0)));
}

/** `(1 - w)·a + w·b` element-wise. */
export function mixLogits(a: readonly number[], b: readonly number[], w: number): number[] {
  return referenceLogits(a.map((x, i) => (1 - w) * x + w * (b[i] ?? 0)));
}

/** True when `v` has exactly `k` finite entries. */
export function isVectorOf(v: readonly number[], k: number): boolean {
  return v.length === k && v.every(Number.isFinite);
}
