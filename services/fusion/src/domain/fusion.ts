import { v1 } from '@aimass/proto';
import { addLogits, argmax, isVectorOf, logitsFromProbabilities, mixLogits, referenceLogits, softmax } from './logits.js';
import type { FusionPolicy } from './strategy.js';

const { FusionStrategy, FallbackReason, ModelRole } = v1;
type FusionStrategy = v1.FusionStrategy;

/** The general model's answer for one input, logits already referenced to class 0. */
export interface GeneralComponent {
  readonly model: v1.ModelRef;
  readonly labels: readonly string[];
  readonly logits: readonly number[];
  readonly probabilities: readonly number[];
}

/** What the personal stage gave for one item. */
export type PersonalOutcome =
  | {
      readonly kind: 'scored';
      readonly model: v1.ModelRef;
      /** The standalone head's logits (class 0 referenced). */
      readonly logits: readonly number[];
      readonly probabilities: readonly number[];
      /** The correction head: stacked logits = general + correction. */
      readonly correction: readonly number[];
      readonly exampleCount: number;
    }
  /** The strategy does not consult the personal model (GENERAL_ONLY). */
  | { readonly kind: 'not_consulted' }
  /** `cached`: known from an earlier Score answer, so Score was not asked this time. */
  | { readonly kind: 'no_model'; readonly cached?: boolean | undefined }
  | { readonly kind: 'version_mismatch'; readonly model?: v1.ModelRef | undefined; readonly paired?: v1.ModelRef | undefined }
  | { readonly kind: 'timeout'; readonly detail: string }
  | { readonly kind: 'error'; readonly detail: string }
  | { readonly kind: 'circuit_open'; readonly detail: string }
  /** The user's consent does not allow the personal model (or could not be verified), so it was not asked. */
  | { readonly kind: 'no_consent'; readonly detail: string };

/** The fused answer for one item and how it came about. */
export interface FusionOutcome {
  /** Fused logits, class 0 referenced. */
  readonly logits: number[];
  readonly probabilities: number[];
  readonly labelIndex: number;
  readonly label: string;
  readonly requested: FusionStrategy;
  readonly applied: FusionStrategy;
  /** Each model's weight in the result (0: consulted but not used). */
  readonly weights: { readonly general: number; readonly personal: number };
  /** The personal model consulted, when one answered (scored or paired with another version). */
  readonly personalModel: v1.ModelRef | undefined;
  /** The personal standalone answer, when the personal model scored the item. */
  readonly personal: { readonly model: v1.ModelRef; readonly probabilities: number[]; readonly labelIndex: number } | undefined;
  readonly fallbacks: v1.Fallback[];
}

const ref = (m: v1.ModelRef | undefined) => (m ? `${m.name}:${m.version}` : 'unknown');

/**
 * λ = λmax · n / (n + k): the personal weight grows with the user's evidence n and never passes
 * λmax, so a user with a handful of examples stays close to the general answer (shrinkage).
 */
export function shrinkageWeight(exampleCount: number, k: number, maxWeight: number): number {
  const n = Math.max(0, exampleCount);
  if (n === 0) return 0;
  return (maxWeight * n) / (n + k);
}

/** Whether OVERRIDE lets the personal answer win: confident enough, with enough evidence. */
export function overrideApplies(personalProbabilities: readonly number[], exampleCount: number, threshold: number, minExamples: number): boolean {
  if (exampleCount < minExamples || personalProbabilities.length === 0) return false;
  return Math.max(...personalProbabilities) >= threshold;
}

function fallbackFor(outcome: PersonalOutcome): v1.Fallback | undefined {
  const personal = ModelRole.MODEL_ROLE_PERSONAL;
  switch (outcome.kind) {
    case 'no_model':
      return {
        reason: FallbackReason.FALLBACK_REASON_NO_PERSONAL_MODEL,
        role: personal,
        detail: `the user has no personal model yet: feedback creates one${outcome.cached ? ' (cached)' : ''}`,
      };
    case 'version_mismatch':
      return {
        reason: FallbackReason.FALLBACK_REASON_GENERAL_VERSION_MISMATCH,
        role: personal,
        detail: `the personal model is paired with general model ${ref(outcome.paired)} and awaits a refit`,
      };
    case 'timeout':
      return { reason: FallbackReason.FALLBACK_REASON_PERSONAL_TIMEOUT, role: personal, detail: outcome.detail };
    case 'error':
      return { reason: FallbackReason.FALLBACK_REASON_PERSONAL_ERROR, role: personal, detail: outcome.detail };
    case 'circuit_open':
      return { reason: FallbackReason.FALLBACK_REASON_CIRCUIT_OPEN, role: personal, detail: outcome.detail };
    case 'no_consent':
      return { reason: FallbackReason.FALLBACK_REASON_NO_CONSENT, role: personal, detail: outcome.detail };
    default:
      return undefined;
  }
}

function finish(
  general: GeneralComponent,
  logits: number[],
  fields: Omit<FusionOutcome, 'logits' | 'probabilities' | 'labelIndex' | 'label'>,
): FusionOutcome {
  const probabilities = softmax(logits);
  const labelIndex = argmax(probabilities);
  return { logits, probabilities, labelIndex, label: general.labels[labelIndex] ?? String(labelIndex), ...fields };
}

/**
 * Combines the general answer with the personal outcome under the requested strategy. Anything
 * that keeps the strategy from running (no model, timeout, error, a malformed personal answer)
 * yields the general answer, GENERAL_ONLY as the applied strategy, and a fallback saying why.
 */
export function fuse(general: GeneralComponent, personal: PersonalOutcome, requested: FusionStrategy, policy: FusionPolicy): FusionOutcome {
  const k = general.labels.length;
  const g = [...general.logits];
  const generalOnly = (fallbacks: v1.Fallback[], personalModel?: v1.ModelRef) =>
    finish(general, g, {
      requested,
      applied: FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY,
      weights: { general: 1, personal: 0 },
      personalModel,
      personal: undefined,
      fallbacks,
    });

  if (requested === FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY || personal.kind === 'not_consulted') return generalOnly([]);
  if (personal.kind !== 'scored') {
    const fallback = fallbackFor(personal)!;
    return generalOnly([fallback], personal.kind === 'version_mismatch' ? personal.model : undefined);
  }

  const standalone = isVectorOf(personal.logits, k)
    ? referenceLogits(personal.logits)
    : isVectorOf(personal.probabilities, k)
      ? logitsFromProbabilities(personal.probabilities)
      : undefined;
  if (!standalone) {
    return generalOnly(
      [
        {
          reason: FallbackReason.FALLBACK_REASON_PERSONAL_ERROR,
          role: ModelRole.MODEL_ROLE_PERSONAL,
          detail: `personal model ${ref(personal.model)} answered ${personal.logits.length} logits for ${k} labels`,
        },
      ],
      personal.model,
    );
  }
  const personalProbabilities = softmax(standalone);
  const component = { model: personal.model, probabilities: personalProbabilities, labelIndex: argmax(personalProbabilities) };
  const n = personal.exampleCount;
  const common = { requested, applied: requested, personalModel: personal.model, personal: component, fallbacks: [] as v1.Fallback[] };

  switch (requested) {
    case FusionStrategy.FUSION_STRATEGY_PERSONAL_ONLY:
      return finish(general, standalone, { ...common, weights: { general: 0, personal: 1 } });
    case FusionStrategy.FUSION_STRATEGY_INTERPOLATE: {
      const lambda = shrinkageWeight(n, policy.interpolation.k, policy.interpolation.maxWeight);
      return finish(general, mixLogits(g, standalone, lambda), { ...common, weights: { general: 1 - lambda, personal: lambda } });
    }
    case FusionStrategy.FUSION_STRATEGY_STACKING: {
      if (!isVectorOf(personal.correction, k)) {
        const fallback: v1.Fallback = {
          reason: FallbackReason.FALLBACK_REASON_STRATEGY_UNAVAILABLE,
          role: ModelRole.MODEL_ROLE_PERSONAL,
          detail: `personal model ${ref(personal.model)} has no correction head (${personal.correction.length} correction logits for ${k} labels)`,
        };
        return { ...generalOnly([fallback], personal.model), personal: component };
      }
      return finish(general, addLogits(g, personal.correction), { ...common, weights: { general: 1, personal: 1 } });
    }
    case FusionStrategy.FUSION_STRATEGY_OVERRIDE: {
      const wins = overrideApplies(personalProbabilities, n, policy.override.threshold, policy.override.minExamples);
      return finish(general, wins ? standalone : g, { ...common, weights: wins ? { general: 0, personal: 1 } : { general: 1, personal: 0 } });
    }
    default:
      throw new RangeError(`fuse: unsupported strategy ${requested}`);
  }
}
