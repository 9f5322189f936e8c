import {
  ERASURE_STREAM,
  EventBusError,
  erasureRequestedEventId,
  erasureRequestedSubject,
  injectTraceContext,
  newEnvelope,
  publishEvent,
  type EventBus,
} from '@aimass/events';
import { CancelledError, UnavailableError, type Logger } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import type { Tombstone } from '../domain/erasure.js';
import type { CallBounds } from './consent-events.js';
import { PRIVACY_PRODUCER } from './consent-events.js';
import type { DeletedTenantEvents } from './tenant-guard.js';

const RETRY_HINT =
  'the erasure is recorded (tombstone written, consent records deleted); retry Erase for the same user and it is announced once, or leave it to the service, which announces it within its sweep interval';

/** The ErasureRequested of an erasure's current round (its event id derived from the erasure id and the round). */
export function erasureRequestedEvent(t: Tombstone): v1.ErasureRequested {
  const trace: Record<string, string> = {};
  injectTraceContext(trace);
  return {
    envelope: newEnvelope({
      type: 'aimass.v1.ErasureRequested',
      tenant: t.tenant,
      userPseudonym: t.pseudonym,
      producer: PRIVACY_PRODUCER,
      eventId: erasureRequestedEventId(t.erasureId, t.round),
      occurredAt: t.roundAt,
      traceParent: trace['traceparent'],
    }),
    erasureId: t.erasureId,
    services: [...t.services],
  };
}

/**
 * Publishes ErasureRequested durably on `aimass.<tenant>.erasure.requested.<pseudonym>`. A bus that
 * cannot confirm within the call's time gives UNAVAILABLE; the outcome is then unknown, and the
 * retry publishes the same event id, which the stream stores once. An event whose tenant was
 * deleted while it was being published is purged once stored (DeletedTenantEvents).
 */
export class ErasureEvents {
  constructor(
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly deletedTenants: DeletedTenantEvents,
  ) {}

  async publish(t: Tombstone, bounds: CallBounds): Promise<void> {
    const subject = erasureRequestedSubject(t.tenant, t.pseudonym);
    try {
      const stored = this.deletedTenants.published(t.tenant, ERASURE_STREAM.name, subject, publishEvent(this.bus, subject, 'aimass.v1.ErasureRequested', erasureRequestedEvent(t)));
      await withinCall(stored, bounds);
    } catch (err) {
      if (!(err instanceof EventBusError) && !(err instanceof UnavailableError)) throw err;
      this.logger.warn({ err, tenant: t.tenant, pseudonym: t.pseudonym, erasureId: t.erasureId, round: t.round }, 'ErasureRequested not confirmed by the event stream');
      if (err instanceof UnavailableError) throw err;
      throw new UnavailableError(`erasure not announced: the event stream is unreachable or refused it; ${RETRY_HINT}`, { cause: err, retryAfterMs: 1000 });
    }
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
    function onAbort() {
      settle();
      reject(new CancelledError(`erasure cancelled while the event stream was confirming it; ${RETRY_HINT}`));
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline !== undefined) {
      // UNAVAILABLE rather than DEADLINE_EXCEEDED, shortly before the deadline, so the caller gets
      // this answer (and its hint) instead of its own timeout.
      timer = setTimeout(
        () => {
          settle();
          reject(new UnavailableError(`erasure not announced: the event stream did not confirm it in time (unreachable or slow); ${RETRY_HINT}`, { retryAfterMs: 1000 }));
        },
        Math.max(0, deadline - Date.now() - 100),
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
