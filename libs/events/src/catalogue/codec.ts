import { randomUUID } from 'node:crypto';
import { eventCodec, type EventMessage, type EventType, type v1 } from '@aimass/proto';
import type { EventBus, PublishAck } from '../types.js';

/** NATS header naming the event's protobuf type, so a dead letter or a replay can be decoded alone. */
export const EVENT_TYPE_HEADER = 'aimass-event-type';

/** Schema version this build writes; a reader refuses a higher one instead of misreading it. */
export const EVENT_SCHEMA_VERSION = 1;

/** An event that cannot be decoded or does not say what it claims: retrying cannot help it. */
export class MalformedEventError extends Error {
  override readonly name = 'MalformedEventError';
}

export interface EnvelopeInit {
  readonly type: EventType;
  readonly tenant: string;
  /** Empty (or omitted) for tenant-wide events. */
  readonly userPseudonym?: string | undefined;
  readonly producer: string;
  /** A caller-chosen id makes the publish idempotent; a random UUID otherwise. */
  readonly eventId?: string | undefined;
  readonly occurredAt?: Date | undefined;
  readonly traceParent?: string | undefined;
}

export function newEnvelope(init: EnvelopeInit): v1.EventEnvelope {
  return {
    eventId: init.eventId ?? randomUUID(),
    tenant: init.tenant,
    userPseudonym: init.userPseudonym ?? '',
    occurredAt: init.occurredAt ?? new Date(),
    schemaVersion: EVENT_SCHEMA_VERSION,
    eventType: init.type,
    traceParent: init.traceParent ?? '',
    producer: init.producer,
  };
}

type WithEnvelope = { envelope?: v1.EventEnvelope | undefined };

export function encodeEvent<K extends EventType>(type: K, message: EventMessage<K>): Uint8Array {
  const envelope = (message as WithEnvelope).envelope;
  if (!envelope) throw new TypeError(`${type}: the envelope is required`);
  if (envelope.eventType !== type) throw new TypeError(`${type}: envelope says ${envelope.eventType || '(no type)'}`);
  return eventCodec(type).encode(message).finish();
}

/**
 * Decodes an event and checks its envelope: present, of the expected type, of a schema version
 * this build reads, with a tenant and an event id. Anything else is a MalformedEventError (a
 * poison event: the consumer should dead-letter it, not retry it).
 */
export function decodeEvent<K extends EventType>(type: K, data: Uint8Array): EventMessage<K> & { envelope: v1.EventEnvelope } {
  let message: EventMessage<K>;
  try {
    message = eventCodec(type).decode(data);
  } catch (err) {
    throw new MalformedEventError(`not a ${type}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const envelope = (message as WithEnvelope).envelope;
  if (!envelope) throw new MalformedEventError(`${type} without an envelope`);
  if (envelope.eventType !== type) throw new MalformedEventError(`expected ${type}, the envelope says '${envelope.eventType.slice(0, 80)}'`);
  if (envelope.schemaVersion < 1 || envelope.schemaVersion > EVENT_SCHEMA_VERSION) {
    throw new MalformedEventError(`${type} schema version ${envelope.schemaVersion} is not readable here (1..${EVENT_SCHEMA_VERSION})`);
  }
  if (!envelope.tenant) throw new MalformedEventError(`${type} without a tenant`);
  if (!envelope.eventId) throw new MalformedEventError(`${type} without an event id`);
  return message as EventMessage<K> & { envelope: v1.EventEnvelope };
}

/** Publishes an event durably, deduplicated by its envelope's event id. */
export function publishEvent<K extends EventType>(bus: EventBus, subject: string, type: K, message: EventMessage<K>): Promise<PublishAck> {
  const data = encodeEvent(type, message);
  const eventId = (message as WithEnvelope).envelope!.eventId;
  return bus.publish(subject, data, { dedupeId: eventId, headers: { [EVENT_TYPE_HEADER]: type } });
}
