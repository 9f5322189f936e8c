/**
 * From history entries to personal-model requests: which path a user's new feedback takes (an
 * incremental Train on the general model version the user's model is paired with, or a refit
 * when the versions differ), and the training examples themselves.
 */
import { v1 } from '@aimass/proto';
import { sameGeneral } from './general.js';
import type { GeneralRef } from './ids.js';

/** The user's current personal model, as far as the applier cares. */
export interface ModelView {
  /** 0 without a model. */
  readonly version: number;
  /** The general model version it is paired with; undefined without a model. */
  readonly general: GeneralRef | undefined;
  /** Highest feedback stream sequence it has learnt from. */
  readonly watermark: number;
}

export const NO_MODEL: ModelView = { version: 0, general: undefined, watermark: 0 };

export type ApplyPlan =
  /** Train incrementally on `general`; entries without a general output get one from that version. */
  | { readonly kind: 'train'; readonly general: GeneralRef }
  /**
   * Rebuild the user's model from the whole history on the version the general model serves now:
   * training across general versions would mix embeddings.
   */
  | { readonly kind: 'refit'; readonly reason: string };

/**
 * The path for `fresh` entries (non-empty, above the watermark), given the general versions they
 * were produced by (undefined: unknown, computed on whatever version is chosen) and the version
 * the general model serves (as last seen; undefined when not known).
 *
 * A user with a model trains on the version it is paired with when every entry comes from it,
 * even when that version is no longer served (the tenant's refit job moves stale users). A user
 * without one trains on the served version (or, when it is unknown, on the entries' own version)
 * when every entry comes from it. Anything else is a refit: the general model changed, and the
 * user's model moves with it now rather than waiting for the tenant's refit job.
 */
export function planApply(model: ModelView, fresh: readonly (GeneralRef | undefined)[], served: GeneralRef | undefined): ApplyPlan {
  const known = fresh.filter((g): g is GeneralRef => g !== undefined);
  const target = model.version > 0 ? model.general : (served ?? known[0]);
  if (target === undefined) return { kind: 'refit', reason: 'no general model version is known for the first model' };
  if (known.every((g) => sameGeneral(g, target))) return { kind: 'train', general: target };
  return {
    kind: 'refit',
    reason: model.version > 0 ? 'feedback comes from another general model version than the one the model is paired with' : 'feedback comes from another general model version than the served one',
  };
}

/** One TrainingExample from an entry's label and ids and its general output and sparse features. */
export function trainingExample(
  entry: { readonly eventId: string; readonly sequence: number; readonly label: string; readonly occurredAt: Date },
  general: v1.GeneralOutput,
  sparse: v1.SparseVector | undefined,
): v1.TrainingExample {
  return {
    general,
    sparseFeatures: sparse,
    label: entry.label,
    weight: 1,
    sourceEventId: entry.eventId,
    occurredAt: entry.occurredAt,
    sourceSequence: entry.sequence,
  };
}

/**
 * The example an INVALID_ARGUMENT from Train or Refit blames (`examples[3].label` → 3), so the
 * applier can set that entry aside and apply the rest; undefined when the error names no example.
 */
export function blamedExample(field: string | undefined): number | undefined {
  const m = field ? /^examples\[(\d+)\]/.exec(field) : null;
  return m ? Number(m[1]) : undefined;
}

/** Framing of one repeated field entry in a request, on top of the example's own bytes. */
const EXAMPLE_FRAMING_BYTES = 6;

/**
 * How many examples fit in a request of at most `maxBytes` (their encoded size), counted from the
 * oldest (`from: 'oldest'`, incremental batches: the rest waits for the next batch) or from the
 * newest (`from: 'newest'`, refits: the oldest history is left out). At least one, so a single
 * oversized example still reaches personal-model and is refused there with a reason.
 */
export function examplesWithin(examples: readonly v1.TrainingExample[], maxBytes: number, from: 'oldest' | 'newest'): number {
  let total = 0;
  let count = 0;
  const n = examples.length;
  for (let i = 0; i < n; i++) {
    const e = examples[from === 'oldest' ? i : n - 1 - i]!;
    total += v1.TrainingExample.encode(e).finish().length + EXAMPLE_FRAMING_BYTES;
    if (total > maxBytes && count > 0) break;
    count++;
  }
  return count;
}
