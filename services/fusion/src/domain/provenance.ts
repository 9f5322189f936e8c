import { durationFromMs, v1 } from '@aimass/proto';
import type { FusionOutcome } from './fusion.js';

const { ModelRole, Stage } = v1;

/** Stages in the order they happen; TOTAL last. */
export const STAGE_ORDER: readonly v1.Stage[] = [
  Stage.STAGE_ADMISSION,
  Stage.STAGE_GENERAL_MODEL,
  Stage.STAGE_PERSONAL_MODEL,
  Stage.STAGE_FUSION,
  Stage.STAGE_TOTAL,
];

/** Milliseconds per stage; a stage that did not run is absent. */
export type StageDurations = Partial<Record<v1.Stage, number>>;

/**
 * Measures stages with a monotonic clock. Items of one batch share the stages of their call, so a
 * timer is usually shared and its snapshot copied into each item's provenance.
 */
export class StageTimer {
  readonly #now: () => number;
  readonly #started: number;
  readonly #durations: StageDurations = {};

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#started = now();
  }

  /** Runs `fn`, adding its time to `stage` (also when it throws). */
  async time<T>(stage: v1.Stage, fn: () => Promise<T> | T): Promise<T> {
    const start = this.#now();
    try {
      return await fn();
    } finally {
      this.add(stage, this.#now() - start);
    }
  }

  add(stage: v1.Stage, ms: number): void {
    this.#durations[stage] = (this.#durations[stage] ?? 0) + Math.max(0, ms);
  }

  elapsedMs(): number {
    return this.#now() - this.#started;
  }

  /** The stages so far plus TOTAL up to now. */
  snapshot(): StageDurations {
    return { ...this.#durations, [Stage.STAGE_TOTAL]: this.elapsedMs() };
  }
}

export function timingsToProto(durations: StageDurations): v1.StageTiming[] {
  return STAGE_ORDER.filter((s) => durations[s] !== undefined).map((stage) => ({ stage, duration: durationFromMs(durations[stage]!) }));
}

/**
 * How a prediction was made: the general model and (when consulted) the personal model with their
 * weights, the strategy asked for and the one that produced the answer, fallbacks in order, and
 * time per stage.
 */
export function buildProvenance(general: v1.ModelRef, outcome: FusionOutcome, durations: StageDurations): v1.Provenance {
  const models: v1.ModelUsage[] = [{ model: { ...general }, role: ModelRole.MODEL_ROLE_GENERAL, weight: outcome.weights.general }];
  if (outcome.personalModel) {
    models.push({ model: { ...outcome.personalModel }, role: ModelRole.MODEL_ROLE_PERSONAL, weight: outcome.weights.personal });
  }
  return {
    models,
    requestedStrategy: outcome.requested,
    appliedStrategy: outcome.applied,
    fallbacks: outcome.fallbacks.map((f) => ({ ...f })),
    timings: timingsToProto(durations),
  };
}
