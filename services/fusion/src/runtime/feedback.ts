import { createHash } from 'node:crypto';
import {
  CancelledError,
  DeadlineExceededError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  type Pseudonymizer,
} from '@aimass/platform';
import type { PersonalFeaturizer } from '@aimass/ml';
import { v1 } from '@aimass/proto';
import type { FeedbackKeys, HeldKey } from '../adapters/feedback-keys.js';
import { isNotRecorded, type FeedbackRecorder } from '../adapters/feedback-recorder.js';
import type { GeneralModelClient } from '../adapters/general-model-client.js';
import type { PredictionRecordStore } from '../adapters/prediction-records.js';
import type { KnownTenants } from '../adapters/records.js';
import { admit, generalDeadline, type BudgetConfig } from '../domain/budget.js';
import { UUID_PATTERN, derivedFeedbackEventId, feedbackFingerprint, newEventId } from '../domain/ids.js';
import { generalLogits } from '../domain/logits.js';
import type { NoModelCache } from '../domain/no-model-cache.js';
import { personalFeatures } from '../domain/personal-input.js';
import { validateInput, validateKey, validateLabel, validateUserId, type InputLimits } from '../domain/validation.js';
import type { PredictContext } from './predictor.js';

export interface FeedbackServiceOptions {
  readonly general: GeneralModelClient;
  /** Prediction records: sealed with the users' keys, behind their training consent when enforced. */
  readonly records: PredictionRecordStore;
  readonly keys: FeedbackKeys;
  readonly tenants: KnownTenants;
  readonly recorder: FeedbackRecorder;
  readonly featurizer: PersonalFeaturizer;
  readonly pseudonymizer: Pseudonymizer;
  readonly budget: BudgetConfig;
  readonly limits: InputLimits;
  /** The tenant's general model ('' for the service's default): an input is classified by the model its Predict would use. */
  readonly generalModelOf: (tenant: string) => string;
  readonly defaultDeadlineMs: number;
  /** For the NOT_FOUND message: how long predictions can be referred to. */
  readonly retentionHours: number;
  /** Predict's known-no-model cache: a user's entry goes once their feedback is recorded. */
  readonly noModelCache?: NoModelCache | undefined;
}

/** The example a piece of feedback trains on. */
interface Example {
  readonly input: v1.InputPayload;
  readonly general: v1.GeneralOutput;
  readonly labels: readonly string[];
  readonly sparse: v1.SparseVector;
}

function float32Values(sparse: v1.SparseVector): v1.SparseVector {
  return { ...sparse, values: sparse.values.map(Math.fround) };
}

/**
 * Failures after which the feedback may or may not have been applied: the idempotency key stays
 * claimed (pending) so a retry with the same key finishes the same event instead of adding a second.
 * A recorder's refusal marked `notRecorded` (no consent, consent not verifiable) is certain.
 */
function outcomeUnknown(err: unknown): boolean {
  if (isNotRecorded(err)) return false;
  return err instanceof DeadlineExceededError || err instanceof CancelledError || err instanceof UnavailableError || err instanceof InternalError || !(err instanceof Error);
}

/**
 * Feedback: validates everything first (user, key, target, label), so a rejected call stores
 * nothing; then claims the idempotency key, hands the example to the recorder, and marks the key
 * done. The same key again answers `duplicate: true` with the same event id. Without a key the
 * event id is derived from user, target and label: the same feedback again is the same event.
 */
export class FeedbackService {
  readonly #o: FeedbackServiceOptions;

  constructor(options: FeedbackServiceOptions) {
    this.#o = options;
  }

  async feedback(tenant: string, req: v1.FeedbackRequest, ctx: PredictContext): Promise<v1.FeedbackResponse> {
    const o = this.#o;
    const deadline = ctx.deadline?.getTime() ?? Date.now() + o.defaultDeadlineMs;
    validateUserId(req.userId, '', o.limits);
    const key = validateKey(req.idempotencyKey, 'idempotency_key', o.limits);
    const target = req.target;
    if (!target) throw new InvalidArgumentError('target is required: set prediction_id (from a Predict answer) or input', { field: 'prediction_id' });
    if (target.$case === 'predictionId' && target.value === '') {
      throw new InvalidArgumentError('prediction_id is empty: send the id a Predict answer gave, or the input itself', { field: 'prediction_id' });
    }
    if (target.$case === 'predictionId') validateKey(target.value, 'prediction_id', o.limits);
    if (req.label === '') throw new InvalidArgumentError("label is required: the true label, one of the general model's labels", { field: 'label' });
    const input = target.$case === 'input' ? validateInput(target.value, '', o.limits) : undefined;
    const pseudonym = o.pseudonymizer.pseudonymize(tenant, req.userId);
    const fingerprint = feedbackFingerprint(
      target.$case === 'predictionId' ? { predictionId: target.value } : { inputHash: createHash('sha256').update(v1.InputPayload.encode(input!).finish()).digest('hex') },
      req.label,
    );

    let held = key ? await o.keys.get(tenant, pseudonym, key) : undefined;
    if (held) {
      this.#checkSameRequest(held, fingerprint);
      if (held.state === 'done') return { accepted: true, eventId: held.eventId, duplicate: true };
    }

    const example = target.$case === 'predictionId' ? await this.#fromPrediction(tenant, target.value, pseudonym, deadline, ctx) : await this.#fromInput(tenant, input!, deadline, ctx);
    validateLabel(req.label, example.labels);

    // Everything is valid: from here on the feedback is recorded.
    let claimedHere = false;
    if (key && !held) {
      held = await o.keys.claim(tenant, pseudonym, key, { eventId: newEventId(), fingerprint });
      if (held) claimedHere = true;
      else {
        // Another call with the same key got there first: continue under its event id.
        held = await o.keys.get(tenant, pseudonym, key);
        if (!held) throw new UnavailableError('idempotency key changed hands during the call: retry');
        this.#checkSameRequest(held, fingerprint);
        if (held.state === 'done') return { accepted: true, eventId: held.eventId, duplicate: true };
      }
    }
    // Without a key the id is derived from the feedback itself, so a key-less retry is recorded once too.
    const eventId = held?.eventId ?? derivedFeedbackEventId(tenant, pseudonym, fingerprint);
    let refused = false;
    try {
      await o.tenants.remember(tenant);
      const result = await o.recorder.record(
        {
          tenant,
          userPseudonym: pseudonym,
          eventId,
          predictionId: target.$case === 'predictionId' ? target.value : '',
          input: example.input,
          label: req.label,
          general: example.general,
          sparseFeatures: example.sparse,
          idempotencyKey: key,
          occurredAt: req.occurredAt ?? new Date(),
        },
        { deadline: deadline - o.budget.reserveMs, signal: ctx.signal },
      );
      if (held) await o.keys.complete(tenant, pseudonym, key, held);
      ctx.logger.info({ tenant, pseudonym, eventId, duplicate: result.duplicate }, 'feedback recorded');
      // A resumed claim whose event the trainer had already applied is a duplicate too.
      return { accepted: true, eventId, duplicate: result.duplicate };
    } catch (err) {
      refused = isNotRecorded(err);
      if (held && claimedHere && !outcomeUnknown(err)) await o.keys.release(tenant, pseudonym, key, held).catch(() => undefined);
      throw err;
    } finally {
      // The user's model exists now (direct training) or soon will (the updater; its
      // PersonalModelUpdated drops the entry again then). Also after a failure: it may have
      // been applied all the same, unless the recorder refused before handing it on.
      if (!refused) o.noModelCache?.forget(tenant, pseudonym);
    }
  }

  #checkSameRequest(held: HeldKey, fingerprint: string): void {
    if (held.fingerprint !== fingerprint) {
      throw new InvalidArgumentError(
        'idempotency_key was already used for other feedback (another target or label): use a new key for new feedback',
        { field: 'idempotency_key' },
      );
    }
  }

  async #fromPrediction(tenant: string, predictionId: string, pseudonym: string, deadline: number, ctx: PredictContext): Promise<Example> {
    // Refused first without training consent; UNAVAILABLE when the user's key cannot be had. An id
    // fusion cannot have issued (its ids are UUIDs) is unknown without a look-up: the store refuses
    // some such keys (NUL, '/', lone surrogates) with an error that is no answer to the caller.
    const record = !UUID_PATTERN.test(predictionId) ? undefined : await this.#o.records.find(tenant, predictionId, pseudonym, { deadline: deadline - this.#o.budget.reserveMs, signal: ctx.signal });
    if (!record) {
      // Also for a record that no longer opens (its key destroyed at erasure) or was never kept
      // (the key not available at Predict): a denied read looks like an unknown id.
      throw new NotFoundError(
        `prediction '${predictionId.slice(0, 64)}' is unknown or expired for this user: ids are kept ${this.#o.retentionHours} hours and belong to the user they were made for; send the input instead`,
      );
    }
    // A prediction that did not ask Score kept no features: the same featurizer on the same input
    // gives those it would have had, in the float32 precision a record keeps them in.
    const sparse = record.sparse ?? float32Values(personalFeatures(this.#o.featurizer, record.input));
    return { input: record.input, general: record.general, labels: record.labels, sparse };
  }

  async #fromInput(tenant: string, input: v1.InputPayload, deadline: number, ctx: PredictContext): Promise<Example> {
    const o = this.#o;
    admit(deadline - Date.now(), o.budget);
    const name = o.generalModelOf(tenant);
    const model = name ? { name, version: '' } : undefined;
    const answer = await o.general.classify(tenant, [input], model, { deadline: generalDeadline(deadline, o.budget), signal: ctx.signal });
    const r = answer.results[0]!;
    const logits = generalLogits(r.logits, r.probabilities);
    return {
      input,
      general: { model: answer.model, logits, probabilities: r.probabilities, embedding: r.embedding },
      labels: answer.labels,
      sparse: personalFeatures(o.featurizer, input),
    };
  }
}
