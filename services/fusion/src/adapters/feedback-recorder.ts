import { ConflictError } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import type { CallOptions } from './general-model-client.js';
import type { PersonalModelClient } from './personal-model-client.js';

/** One piece of feedback, ready to learn from: everything a trainer needs, nothing identifying. */
export interface FeedbackToRecord {
  readonly tenant: string;
  readonly userPseudonym: string;
  /** The FeedbackRecorded event id; the trainer's deduplication key. */
  readonly eventId: string;
  /** The prediction the feedback is about; empty for feedback on a direct input. */
  readonly predictionId: string;
  /**
   * The input the feedback is about (sent, or kept with the prediction): the user's history keeps
   * it so the model can be refitted on a new general model version.
   */
  readonly input: v1.InputPayload;
  readonly label: string;
  /** The general model's output for the input (logits referenced to class 0). */
  readonly general: v1.GeneralOutput;
  readonly sparseFeatures: v1.SparseVector;
  readonly idempotencyKey: string;
  readonly occurredAt: Date;
}

/**
 * Where Feedback goes once validated. `record` resolves only when the feedback cannot be lost;
 * `duplicate` when it had already been recorded under the same event id. With an event bus,
 * `EventFeedbackRecorder` publishes a FeedbackRecorded event and the updater trains; without one,
 * `DirectTrainingRecorder` trains the personal model in the call. Policies wrap a recorder behind
 * the same interface (`ConsentCheckingRecorder`).
 *
 * A recorder that refuses before handing the feedback to anything marks its error with
 * `notRecorded`: the Feedback handler then knows the outcome is certain (nothing was stored,
 * published or trained), releases the idempotency key it claimed and leaves Predict's
 * known-no-model cache alone. Any other error may have come after the feedback was handed on.
 */
export interface FeedbackRecorder {
  record(feedback: FeedbackToRecord, options: CallOptions): Promise<{ duplicate: boolean }>;
}

const NOT_RECORDED = Symbol('aimass.fusion.notRecorded');

/** Marks a recorder's error as a refusal made before anything was stored, published or trained. */
export function notRecorded<E extends Error>(err: E): E {
  Object.defineProperty(err, NOT_RECORDED, { value: true });
  return err;
}

/** Whether the error is a refusal marked by `notRecorded`. */
export function isNotRecorded(err: unknown): boolean {
  return err instanceof Error && (err as Error & { [NOT_RECORDED]?: boolean })[NOT_RECORDED] === true;
}

const MAX_CAS_ATTEMPTS = 4;

/**
 * Trains the user's personal model with the example now (personal-model Train), keyed by the event
 * id so a retried Feedback cannot apply it twice. Train is a compare-and-set on the user's current
 * version, so a concurrent update of the same user is retried from a fresh read.
 *
 * For deployments without an event bus: there is no updater then (it consumes the bus), so
 * Feedback trains directly, and no history is kept (the input is not used: no refit is possible).
 */
export class DirectTrainingRecorder implements FeedbackRecorder {
  readonly #personal: PersonalModelClient;

  constructor(personal: PersonalModelClient) {
    this.#personal = personal;
  }

  async record(feedback: FeedbackToRecord, options: CallOptions): Promise<{ duplicate: boolean }> {
    const example: v1.TrainingExample = {
      general: feedback.general,
      sparseFeatures: feedback.sparseFeatures,
      label: feedback.label,
      weight: 1,
      sourceEventId: feedback.eventId,
      // Not from a stream: deduplicated by the idempotency key (the event id) instead.
      sourceSequence: 0,
      occurredAt: feedback.occurredAt,
    };
    for (let attempt = 1; ; attempt++) {
      const expectedVersion = await this.#personal.currentVersion(feedback.tenant, feedback.userPseudonym, options);
      try {
        const res = await this.#personal.train(
          feedback.tenant,
          { userPseudonym: feedback.userPseudonym, examples: [example], idempotencyKey: feedback.eventId, expectedVersion },
          options,
        );
        return { duplicate: res.duplicate };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= MAX_CAS_ATTEMPTS) throw err;
      }
    }
  }
}
