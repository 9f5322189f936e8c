import { CancelledError, UnavailableError, type Logger } from '@aimass/platform';
import {
  EventBusClosedError,
  EventBusError,
  EventBusUnavailableError,
  feedbackSubject,
  injectTraceContext,
  newEnvelope,
  plaintextSealer,
  publishEvent,
  type EventBus,
  type PayloadSealer,
  type PublishAck,
} from '@aimass/events';
import { v1 } from '@aimass/proto';
import type { CallOptions } from './general-model-client.js';
import { keyFailure } from '../domain/data-keys.js';
import { idempotencyRecordId } from '../domain/ids.js';
import { notRecorded, type FeedbackRecorder, type FeedbackToRecord } from './feedback-recorder.js';
import { keyWithin } from './key-wait.js';

/** The envelope's `producer` of the events fusion publishes. */
export const FUSION_PRODUCER = 'fusion';

const FEEDBACK_RECORDED = 'aimass.v1.FeedbackRecorded';

const RETRY_HINT = 'retry with the same idempotency_key (or the same feedback, without one): it is recorded once';

export interface EventFeedbackRecorderOptions {
  /**
   * Seals the personal data of the event (input, general output, sparse features) with the
   * user's key (`AesGcmSealer` over the privacy service's keys); `plaintextSealer()` (algorithm
   * NONE) without them.
   */
  readonly sealer?: PayloadSealer | undefined;
  /** Told why the stream refused or did not answer (the caller gets UNAVAILABLE without the detail). */
  readonly logger?: Logger | undefined;
}

/**
 * Records feedback as a durable FeedbackRecorded event on the user's feedback subject
 * (`aimass.<tenant>.feedback.<partition>.<pseudonym>`: the pseudonym, never the user id); the
 * updater consumes it and trains. Resolves only once the stream has stored the event, so an OK
 * Feedback is never lost. The event id is the stream's dedupe id: a retry under the same id
 * within the stream's duplicate window is acknowledged as a duplicate and not stored again (the
 * updater deduplicates by event id beyond it).
 *
 * When the stream cannot confirm (NATS down, reconnecting, the bus closed) the call fails with
 * UNAVAILABLE: the event may or may not be stored, and a retry with the same event id is safe
 * either way. When the event cannot be sealed (the user's key not there within the call: the
 * privacy service unreachable, UNAVAILABLE; the user erased, FAILED_PRECONDITION) nothing is
 * published and the refusal is certain (`notRecorded`).
 */
export class EventFeedbackRecorder implements FeedbackRecorder {
  readonly #bus: EventBus;
  readonly #sealer: PayloadSealer;
  readonly #logger: Logger | undefined;

  constructor(bus: EventBus, options: EventFeedbackRecorderOptions = {}) {
    this.#bus = bus;
    this.#sealer = options.sealer ?? plaintextSealer();
    this.#logger = options.logger;
  }

  async record(feedback: FeedbackToRecord, options: CallOptions): Promise<{ duplicate: boolean }> {
    let event: v1.FeedbackRecorded;
    try {
      event = await keyWithin(this.#event(feedback), options, 'sealing feedback');
    } catch (err) {
      // Nothing was published: a certain refusal, so the Feedback handler releases the key.
      const failure = keyFailure(err, 'feedback not recorded');
      this.#logger?.warn({ err, tenant: feedback.tenant, pseudonym: feedback.userPseudonym, eventId: feedback.eventId }, "feedback not recorded: it could not be sealed with the user's data key");
      throw notRecorded(failure);
    }
    const subject = feedbackSubject(feedback.tenant, feedback.userPseudonym);
    let ack: PublishAck;
    try {
      ack = await withinCall(publishEvent(this.#bus, subject, FEEDBACK_RECORDED, event), options);
    } catch (err) {
      throw this.#translate(err, feedback);
    }
    return { duplicate: ack.duplicate };
  }

  async #event(f: FeedbackToRecord): Promise<v1.FeedbackRecorded> {
    const scope = { tenant: f.tenant, userPseudonym: f.userPseudonym };
    // Bound to the event id, so a sealed payload cannot be replayed inside another event.
    const seal = (bytes: Uint8Array) => this.#sealer.seal(scope, bytes, f.eventId);
    const [input, generalOutput, sparseFeatures] = await Promise.all([
      seal(v1.InputPayload.encode(f.input).finish()),
      seal(v1.GeneralOutput.encode(f.general).finish()),
      seal(v1.SparseVector.encode(f.sparseFeatures).finish()),
    ]);
    const trace: Record<string, string> = {};
    injectTraceContext(trace);
    return {
      envelope: newEnvelope({
        type: FEEDBACK_RECORDED,
        tenant: f.tenant,
        userPseudonym: f.userPseudonym,
        producer: FUSION_PRODUCER,
        eventId: f.eventId,
        occurredAt: f.occurredAt,
        traceParent: trace['traceparent'],
      }),
      predictionId: f.predictionId,
      label: f.label,
      input,
      // The caller's key can carry personal data and the stream outlives an erasure: only its digest travels.
      idempotencyKey: f.idempotencyKey === '' ? '' : idempotencyRecordId(f.userPseudonym, f.idempotencyKey),
      generalModel: f.general.model,
      generalOutput,
      sparseFeatures,
    };
  }

  #translate(err: unknown, f: FeedbackToRecord): unknown {
    if (!(err instanceof EventBusError)) return err;
    this.#logger?.warn({ err, tenant: f.tenant, pseudonym: f.userPseudonym, eventId: f.eventId }, 'feedback not recorded: the event stream did not confirm it');
    if (err instanceof EventBusUnavailableError || err instanceof EventBusClosedError) {
      return new UnavailableError(`feedback not recorded: the event stream is unreachable; ${RETRY_HINT}`, { cause: err });
    }
    // The stream answered and said no (its limits, a missing stream): an operator has to act, a
    // later retry under the same event id then succeeds.
    return new UnavailableError(`feedback not recorded: the event stream refused it; ${RETRY_HINT} later`, { cause: err });
  }
}

/**
 * How long before the caller's deadline an unconfirmed publish is given up, at most: the refusal
 * must get back to the caller before its own deadline fires there. The budget's reserve (3 ms) is
 * for fusion's own work, and on a loaded machine a reply sent that close to the deadline arrived
 * after it, so an SDK retry that started late saw DEADLINE_EXCEEDED instead of the UNAVAILABLE it
 * can act on (seen once in CI, the e2e test with NATS killed). A quarter of the time left at most,
 * so a short call still waits for most of its time.
 */
export const UNCONFIRMED_REFUSAL_MARGIN_MS = 50;

function refusalDelayMs(leftMs: number): number {
  return Math.max(0, leftMs - Math.min(UNCONFIRMED_REFUSAL_MARGIN_MS, leftMs / 4));
}

/**
 * The publish within the incoming call's deadline and cancellation. The publish itself cannot be
 * withdrawn and may still be stored afterwards: the outcome is unknown, which the Feedback handler
 * treats as such (the idempotency key stays claimed for the retry).
 */
function withinCall<T>(promise: Promise<T>, options: CallOptions): Promise<T> {
  const { deadline, signal } = options;
  if (deadline === undefined && !signal) return promise;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      settle();
      reject(new CancelledError('feedback cancelled while the event stream was confirming it; ' + RETRY_HINT));
    };
    const settle = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline !== undefined) {
      timer = setTimeout(() => {
        settle();
        // UNAVAILABLE, not DEADLINE_EXCEEDED: a stream that does not confirm for the whole of the
        // caller's time is down or cut off from us (NATS reconnecting), which is what the caller
        // needs to know; it is sent UNCONFIRMED_REFUSAL_MARGIN_MS ahead, so it arrives in time.
        reject(new UnavailableError(`feedback not recorded: the event stream did not confirm it within the call's deadline (unreachable or slow); ${RETRY_HINT}`));
      }, refusalDelayMs(deadline - Date.now()));
    }
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (err: unknown) => {
        settle();
        reject(err);
      },
    );
  });
}
