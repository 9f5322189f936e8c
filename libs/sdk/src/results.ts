import { durationToMs, v1 } from '@aimass/proto';

/** Fusion strategies by name (the protocol's FusionStrategy without its prefix). */
export type Strategy = 'general' | 'personal' | 'interpolate' | 'stacking' | 'override';
export const STRATEGIES: readonly Strategy[] = ['general', 'personal', 'interpolate', 'stacking', 'override'];

const STRATEGY_CODE: Readonly<Record<Strategy, v1.FusionStrategy>> = {
  general: v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY,
  personal: v1.FusionStrategy.FUSION_STRATEGY_PERSONAL_ONLY,
  interpolate: v1.FusionStrategy.FUSION_STRATEGY_INTERPOLATE,
  stacking: v1.FusionStrategy.FUSION_STRATEGY_STACKING,
  override: v1.FusionStrategy.FUSION_STRATEGY_OVERRIDE,
};

/** `undefined` keeps the tenant's default strategy. */
export function strategyCode(strategy: Strategy | v1.FusionStrategy | undefined): v1.FusionStrategy {
  if (strategy === undefined) return v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED;
  if (typeof strategy === 'number') return strategy;
  const code = STRATEGY_CODE[strategy];
  if (code === undefined) throw new TypeError(`unknown strategy "${String(strategy)}" (known: ${STRATEGIES.join(', ')})`);
  return code;
}

/** `unspecified` when the server left it unset or sent a value this SDK version does not know. */
export function strategyName(code: v1.FusionStrategy): Strategy | 'unspecified' {
  return STRATEGIES.find((s) => STRATEGY_CODE[s] === code) ?? 'unspecified';
}

export type ModelRole = 'general' | 'personal' | 'combiner' | 'unspecified';
export type FallbackReason =
  | 'no_consent'
  | 'no_personal_model'
  | 'personal_timeout'
  | 'personal_error'
  | 'general_version_mismatch'
  | 'general_fallback_version'
  | 'strategy_unavailable'
  | 'circuit_open'
  | 'unspecified';
export type Stage = 'admission' | 'consent' | 'general_model' | 'personal_model' | 'fusion' | 'total';

/** The enum's JSON name without its prefix, lower-cased: FALLBACK_REASON_NO_CONSENT → no_consent. */
function enumName(json: string, prefix: string): string {
  return json.startsWith(prefix) ? json.slice(prefix.length).toLowerCase() : 'unspecified';
}

const roleName = (role: v1.ModelRole): ModelRole => enumName(v1.modelRoleToJSON(role), 'MODEL_ROLE_') as ModelRole;
const reasonName = (reason: v1.FallbackReason): FallbackReason => enumName(v1.fallbackReasonToJSON(reason), 'FALLBACK_REASON_') as FallbackReason;
const stageName = (stage: v1.Stage): Stage | 'unspecified' => enumName(v1.stageToJSON(stage), 'STAGE_') as Stage | 'unspecified';

export interface ModelRef {
  name: string;
  version: string;
}

export interface ClassProbability {
  label: string;
  /** Index of the label in the model's label list. */
  index: number;
  probability: number;
}

export interface ModelUsage extends ModelRef {
  role: ModelRole;
  /** Its weight in the fused result (0 when consulted but not used). */
  weight: number;
}

export interface Fallback {
  reason: FallbackReason;
  role: ModelRole;
  /** For logs and support, not for program logic. */
  detail: string;
}

/** How a prediction was made. */
export interface Provenance {
  requestedStrategy: Strategy | 'unspecified';
  appliedStrategy: Strategy | 'unspecified';
  models: ModelUsage[];
  fallbacks: Fallback[];
  /** Milliseconds per stage, for the stages the server reported. */
  timingsMs: Partial<Record<Stage, number>>;
}

export interface ComponentResult {
  model: ModelRef | undefined;
  label: string;
  probabilities: Record<string, number>;
}

export interface PredictionResult {
  /** Server-assigned; give it to `feedback` to label this prediction. */
  predictionId: string;
  label: string;
  /** Probability by label. */
  probabilities: Record<string, number>;
  /** The same probabilities as the server listed them (all labels in label order, or the top k). */
  probabilityList: ClassProbability[];
  provenance: Provenance;
  /** The general model's embedding, when asked for (`includeEmbedding`). */
  embedding: number[] | undefined;
  /** The general model's own result, when asked for (`includeComponents`). */
  general: ComponentResult | undefined;
  /** The personal model's own result, when asked for and one was used. */
  personal: ComponentResult | undefined;
}

function probabilityRecord(list: readonly v1.ClassProbability[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of list) out[p.label] = p.probability;
  return out;
}

function modelRef(ref: v1.ModelRef | undefined): ModelRef | undefined {
  return ref ? { name: ref.name, version: ref.version } : undefined;
}

function component(c: v1.ComponentResult | undefined): ComponentResult | undefined {
  return c ? { model: modelRef(c.model), label: c.label, probabilities: probabilityRecord(c.probabilities) } : undefined;
}

export function toProvenance(p: v1.Provenance | undefined): Provenance {
  const timingsMs: Partial<Record<Stage, number>> = {};
  for (const t of p?.timings ?? []) {
    const name = stageName(t.stage);
    if (name !== 'unspecified' && t.duration) timingsMs[name] = durationToMs(t.duration);
  }
  return {
    requestedStrategy: strategyName(p?.requestedStrategy ?? v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED),
    appliedStrategy: strategyName(p?.appliedStrategy ?? v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED),
    models: (p?.models ?? []).map((m) => ({ name: m.model?.name ?? '', version: m.model?.version ?? '', role: roleName(m.role), weight: m.weight })),
    fallbacks: (p?.fallbacks ?? []).map((f) => ({ reason: reasonName(f.reason), role: roleName(f.role), detail: f.detail })),
    timingsMs,
  };
}

export function toPredictionResult(p: v1.Prediction): PredictionResult {
  return {
    predictionId: p.predictionId,
    label: p.label,
    probabilities: probabilityRecord(p.probabilities),
    probabilityList: p.probabilities.map((c) => ({ label: c.label, index: c.index, probability: c.probability })),
    provenance: toProvenance(p.provenance),
    embedding: p.embedding.length > 0 ? [...p.embedding] : undefined,
    general: component(p.general),
    personal: component(p.personal),
  };
}
