/**
 * The erasure saga's shared parts: event ids, the consumer settings, and the participant every
 * service that holds user data runs (personal-model, the updater, and fusion once it joins).
 *
 * privacy ──ErasureRequested──▶ AIMASS_ERASURE ──(consumer group `<service>-erasure`)──▶ participant
 *                                                                                           │ erase(request)
 * privacy ◀──ErasureCompleted (aimass.<tenant>.erasure.completed.<service>.<pseudonym>)─────┘
 */
import { createHash } from 'node:crypto';
import { v1 } from '@aimass/proto';
import { z } from 'zod';
import type { ConsumerHandle, DeliveredEvent, EventBus } from '../types.js';
import { MalformedEventError, decodeEvent, newEnvelope, publishEvent } from './codec.js';
import { ALL_ERASURE_REQUESTED, DEAD_LETTER_STREAM, ERASURE_STREAM, deadLetterSubject, erasureCompletedSubject, erasureRequestedSubject } from './subjects.js';

/** A service name as it appears in subjects and receipts: one subject token, lower case. */
export const ERASURE_SERVICE_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * A UUID v8 made of SHA-256 over the parts: the same parts give the same event id on every
 * replica and retry, so the stream's duplicate window stores a repeated publish once.
 */
export function derivedEventId(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  const b = h.digest().subarray(0, 16);
  b[6] = 0x80 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The event id of one round of an erasure's ErasureRequested. A retried Erase publishes the same
 * round (stored once); a new round (privacy asking again for missing confirmations) is a new event,
 * so the participants' consumer groups receive it even though they acknowledged the earlier one.
 */
export function erasureRequestedEventId(erasureId: string, round: number): string {
  return derivedEventId('aimass/erasure-requested/v1', erasureId, String(round));
}

/**
 * The event id of a participant's answer to one ErasureRequested: a redelivered request answers
 * with the same event (stored once), a new round with a new one, so privacy hears it again even
 * if it lost the first.
 */
export function erasureCompletedEventId(service: string, requestEventId: string, status: v1.ErasureStatus): string {
  return derivedEventId('aimass/erasure-completed/v1', service, requestEventId, String(status));
}

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const nonNegativeInt = (what: string) => {
  const error = `expected ${what} (a whole number >= 0)`;
  return z.number({ error }).int({ error }).min(0, { error });
};

/**
 * A consumer group of the erasure stream, as a configuration section (`<service>.erasure` in the
 * participants, `privacy.erasure.consumer` for the confirmations). The group is one ordered
 * partition (erasures are rare); replicas share it through its lease.
 */
export function erasureConsumerConfigSchema(durable: string) {
  return z.strictObject({
    /** Consumer group name; every replica of the service uses the same one. */
    durable: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a consumer name of letters, digits, _ and -' })
      .default(durable),
    /** Failed attempts after which a request is answered FAILED and dead-lettered (privacy asks again later). */
    maxDeliver: positiveInt('a number of attempts').max(100).default(5),
    /** Delay before each redelivery after a failure; the last entry repeats. */
    backoffMs: z.array(nonNegativeInt('a duration in milliseconds')).min(1).default([1_000, 5_000, 15_000]),
    /** An unacknowledged delivery is redelivered after this: above the slowest deletion. */
    ackWaitMs: positiveInt('a duration in milliseconds').default(60_000),
    /** Partition lease lifetime (NATS): how soon another replica takes over after one dies. */
    leaseTtlMs: positiveInt('a duration in milliseconds').optional(),
  });
}

export type ErasureConsumerConfig = z.output<ReturnType<typeof erasureConsumerConfigSchema>>;
export type ErasureConsumerConfigInput = z.input<ReturnType<typeof erasureConsumerConfigSchema>>;

/** What a participant is asked to erase. */
export interface ErasureRequest {
  readonly tenant: string;
  readonly userPseudonym: string;
  readonly erasureId: string;
  /** The ErasureRequested's event id (one per round). */
  readonly requestEventId: string;
  /** The services privacy expects to confirm. */
  readonly services: readonly string[];
}

export interface ErasureOutcome {
  /** Documents (or other items) deleted; 0 when nothing was left, which is success. */
  readonly itemsDeleted: number;
  readonly detail?: string | undefined;
}

/** The two log levels the participant uses (a pino Logger fits). */
export interface ErasureLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ErasureParticipantOptions {
  readonly bus: EventBus;
  /** The confirming service's name (`personal-model`), as privacy's `erasure.services` lists it. */
  readonly service: string;
  /**
   * Deletes everything the service holds about the user. Must be idempotent: a redelivery or a
   * new round calls it again for a user already erased, and it then succeeds with 0 items.
   */
  readonly erase: (request: ErasureRequest) => Promise<ErasureOutcome>;
  /** The consumer group's settings (defaults: `erasureConsumerConfigSchema('<service>-erasure')`). */
  readonly consumer?: ErasureConsumerConfigInput | undefined;
  readonly logger?: ErasureLogger | undefined;
}

export interface ErasureParticipantStats {
  /** Requests erased and confirmed. */
  readonly completed: number;
  /** Attempts that failed (each retried, the last one answered FAILED). */
  readonly failures: number;
}

export interface ErasureParticipant {
  readonly consumer: ConsumerHandle;
  stats(): ErasureParticipantStats;
  /** Stops consuming (waits for an erasure in progress); the bus stays open. */
  close(): Promise<void>;
}

/** The ErasureCompleted a participant publishes. */
export function erasureCompletedEvent(
  request: ErasureRequest,
  service: string,
  status: v1.ErasureStatus,
  outcome: { itemsDeleted: number; detail?: string | undefined },
  occurredAt: Date = new Date(),
): v1.ErasureCompleted {
  return {
    envelope: newEnvelope({
      type: 'aimass.v1.ErasureCompleted',
      tenant: request.tenant,
      userPseudonym: request.userPseudonym,
      producer: service,
      eventId: erasureCompletedEventId(service, request.requestEventId, status),
      occurredAt,
    }),
    service,
    erasureId: request.erasureId,
    status,
    itemsDeleted: outcome.itemsDeleted,
    detail: (outcome.detail ?? '').slice(0, 1024),
  };
}

/** Reads an ErasureRequested and checks that it says what its subject says (a poison event otherwise). */
export function parseErasureRequested(event: DeliveredEvent): ErasureRequest {
  const message = decodeEvent('aimass.v1.ErasureRequested', event.data);
  const { tenant, userPseudonym, eventId } = message.envelope;
  if (!userPseudonym) throw new MalformedEventError('ErasureRequested without a user pseudonym');
  if (event.subject !== erasureRequestedSubject(tenant, userPseudonym)) {
    throw new MalformedEventError(`ErasureRequested on ${event.subject.slice(0, 200)} names another tenant or user in its envelope`);
  }
  if (!message.erasureId) throw new MalformedEventError('ErasureRequested without an erasure id');
  return { tenant, userPseudonym, erasureId: message.erasureId, requestEventId: eventId, services: message.services };
}

/**
 * Runs a service's part of every erasure: consumes ErasureRequested (a durable group shared by
 * the replicas), calls `erase`, and publishes ErasureCompleted (COMPLETED with the items deleted).
 * A failing `erase` is retried with the group's back-off; its last attempt publishes FAILED with
 * the reason before the request goes to the dead-letter subject, and privacy publishes the
 * request again at its retry interval. A service is asked even when the request's `services` do
 * not list it: whatever it holds goes, and privacy records the extra confirmation.
 */
export async function startErasureParticipant(o: ErasureParticipantOptions): Promise<ErasureParticipant> {
  if (!ERASURE_SERVICE_PATTERN.test(o.service)) throw new TypeError(`erasure participant: '${o.service}' is not a service name (${ERASURE_SERVICE_PATTERN.source})`);
  const cfg = erasureConsumerConfigSchema(`${o.service}-erasure`).parse(o.consumer ?? {});
  for (const stream of [ERASURE_STREAM, DEAD_LETTER_STREAM]) await o.bus.ensureStream(stream);
  const counters = { completed: 0, failures: 0 };

  const confirm = async (request: ErasureRequest, status: v1.ErasureStatus, outcome: ErasureOutcome) => {
    const event = erasureCompletedEvent(request, o.service, status, outcome);
    await publishEvent(o.bus, erasureCompletedSubject(request.tenant, o.service, request.userPseudonym), 'aimass.v1.ErasureCompleted', event);
  };

  const handle = async (event: DeliveredEvent): Promise<void> => {
    const request = parseErasureRequested(event);
    const log = { tenant: request.tenant, pseudonym: request.userPseudonym, erasureId: request.erasureId, attempt: event.deliveryCount };
    let outcome: ErasureOutcome;
    try {
      outcome = await o.erase(request);
    } catch (err) {
      counters.failures++;
      const reason = err instanceof Error ? err.message : String(err);
      o.logger?.warn({ ...log, err }, 'erasure failed; it is retried');
      if (event.deliveryCount >= cfg.maxDeliver) {
        // Best effort: the receipt then says why; privacy asks again either way.
        await confirm(request, v1.ErasureStatus.ERASURE_STATUS_FAILED, { itemsDeleted: 0, detail: reason }).catch(() => undefined);
      }
      throw err;
    }
    // A failed publish throws: the request comes back, `erase` runs again (finding nothing) and
    // the confirmation is published then.
    await confirm(request, v1.ErasureStatus.ERASURE_STATUS_COMPLETED, outcome);
    counters.completed++;
    o.logger?.info({ ...log, itemsDeleted: outcome.itemsDeleted }, 'user erased and confirmed');
  };

  const consumer = await o.bus.consume(
    {
      durable: cfg.durable,
      stream: ERASURE_STREAM.name,
      filterSubject: ALL_ERASURE_REQUESTED,
      maxDeliver: cfg.maxDeliver,
      backoffMs: cfg.backoffMs,
      ackWaitMs: cfg.ackWaitMs,
      leaseTtlMs: cfg.leaseTtlMs,
      deadLetterSubject: deadLetterSubject(cfg.durable),
    },
    handle,
  );
  return {
    consumer,
    stats: () => ({ ...counters }),
    close: () => consumer.close(),
  };
}
