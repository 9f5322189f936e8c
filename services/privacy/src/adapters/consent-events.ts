import { consentStateToProto, purposeToProto } from '@aimass/consent';
import {
  CONSENT_STREAM,
  EventBusClosedError,
  EventBusError,
  EventBusUnavailableError,
  consentChangedSubject,
  injectTraceContext,
  newEnvelope,
  publishEvent,
  type EventBus,
} from '@aimass/events';
import { CancelledError, UnavailableError, type Logger } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { ChainOwner, ConsentRecord } from '../domain/chain.js';
import { consentEventId } from '../domain/ids.js';
import type { DeletedTenantEvents } from './tenant-guard.js';

/** The envelope's `producer` of the events this service publishes. */
export const PRIVACY_PRODUCER = 'privacy';

const CONSENT_CHANGED = 'aimass.v1.ConsentChanged';

const RETRY_HINT = 'the decision is recorded; retry the same request (or with the same idempotency_key) and it is announced once';

export interface CallBounds {
  /** Epoch ms by which the call must answer. */
  readonly deadline?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The ConsentChanged of a record, with the event id derived from the record's hash. */
export function consentChangedEvent(owner: ChainOwner, record: ConsentRecord): v1.ConsentChanged {
  const trace: Record<string, string> = {};
  injectTraceContext(trace);
  return {
    envelope: newEnvelope({
      type: CONSENT_CHANGED,
      tenant: owner.tenant,
      userPseudonym: owner.userPseudonym,
      producer: PRIVACY_PRODUCER,
      eventId: consentEventId(record.hash),
      occurredAt: record.decidedAt,
      traceParent: trace['traceparent'],
    }),
    purpose: purposeToProto(record.purpose),
    state: consentStateToProto(record.state),
    previousState: record.previousState === 'none' ? v1.ConsentState.CONSENT_STATE_UNSPECIFIED : consentStateToProto(record.previousState),
    policyVersion: record.policyVersion,
    source: record.source,
    recordSequence: record.sequence,
    recordHash: record.hash,
  };
}

/**
 * Publishes ConsentChanged durably on `aimass.<tenant>.consent.changed.<pseudonym>` (the pseudonym,
 * never the user id). Resolves once the stream stored it; a bus that cannot confirm within the
 * call's time gives UNAVAILABLE. The outcome is then unknown: a retry publishes under the same
 * event id, which the stream stores once. An event whose tenant was deleted while it was being
 * published is purged once stored (DeletedTenantEvents).
 */
export class ConsentEvents {
  constructor(
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly deletedTenants: DeletedTenantEvents,
  ) {}

  async publish(owner: ChainOwner, record: ConsentRecord, bounds: CallBounds): Promise<{ duplicate: boolean }> {
    const event = consentChangedEvent(owner, record);
    const subject = consentChangedSubject(owner.tenant, owner.userPseudonym);
    try {
      const stored = this.deletedTenants.published(owner.tenant, CONSENT_STREAM.name, subject, publishEvent(this.bus, subject, CONSENT_CHANGED, event));
      const ack = await withinCall(stored, bounds);
      return { duplicate: ack.duplicate };
    } catch (err) {
      throw this.#translate(err, owner, record);
    }
  }

  #translate(err: unknown, owner: ChainOwner, record: ConsentRecord): unknown {
    if (!(err instanceof EventBusError)) return err;
    this.logger.warn({ err, tenant: owner.tenant, pseudonym: owner.userPseudonym, sequence: record.sequence }, 'ConsentChanged not confirmed by the event stream');
    if (err instanceof EventBusUnavailableError || err instanceof EventBusClosedError) {
      return new UnavailableError(`consent change not announced: the event stream is unreachable; ${RETRY_HINT}`, { cause: err, retryAfterMs: 1000 });
    }
    // The stream answered and said no (its limits, a missing stream): an operator has to act.
    return new UnavailableError(`consent change not announced: the event stream refused it; ${RETRY_HINT} later`, { cause: err, retryAfterMs: 1000 });
  }
}

/** The publish within the call's deadline: its own bound (several seconds) may be longer. */
function withinCall<T>(promise: Promise<T>, bounds: CallBounds): Promise<T> {
  const { deadline, signal } = bounds;
  if (deadline === undefined && !signal) return promise;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      settle();
      reject(new CancelledError(`consent change cancelled while the event stream was confirming it; ${RETRY_HINT}`));
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline !== undefined) {
      timer = setTimeout(
        () => {
          settle();
          // UNAVAILABLE rather than DEADLINE_EXCEEDED: a stream silent for the caller's whole time is
          // down or cut off, and the caller still gets an answer before its deadline.
          reject(new UnavailableError(`consent change not announced: the event stream did not confirm it in time (unreachable or slow); ${RETRY_HINT}`, { retryAfterMs: 1000 }));
        },
        Math.max(0, deadline - Date.now()),
      );
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
