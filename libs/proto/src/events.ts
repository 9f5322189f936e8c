import type { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  ConsentChanged,
  DeadLetter,
  ErasureCompleted,
  ErasureRequested,
  FeedbackRecorded,
  GeneralModelVersionChanged,
  PersonalModelUpdated,
  TenantDeleted,
  TenantDeletionCompleted,
} from './gen/aimass/v1/events.js';

/** The encode/decode/JSON functions ts-proto generates for every message. */
export interface MessageCodec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
  fromJSON(object: unknown): T;
  toJSON(message: T): unknown;
}

/** Event type name (EventEnvelope.event_type, the full protobuf name) to message type. */
interface EventMessages {
  'aimass.v1.FeedbackRecorded': FeedbackRecorded;
  'aimass.v1.PersonalModelUpdated': PersonalModelUpdated;
  'aimass.v1.ConsentChanged': ConsentChanged;
  'aimass.v1.ErasureRequested': ErasureRequested;
  'aimass.v1.ErasureCompleted': ErasureCompleted;
  'aimass.v1.GeneralModelVersionChanged': GeneralModelVersionChanged;
  'aimass.v1.TenantDeleted': TenantDeleted;
  'aimass.v1.TenantDeletionCompleted': TenantDeletionCompleted;
  'aimass.v1.DeadLetter': DeadLetter;
}

/** An event type name. */
export type EventType = keyof EventMessages;

/** The message type of an event type name (all of them by default). */
export type EventMessage<K extends EventType = EventType> = EventMessages[K];

/**
 * Every event message's codec by its type name, so a consumer can decode a payload from the
 * type named in its envelope or `aimass-event-type` header.
 */
export const EVENT_TYPES: { readonly [K in EventType]: MessageCodec<EventMessages[K]> } = {
  'aimass.v1.FeedbackRecorded': FeedbackRecorded,
  'aimass.v1.PersonalModelUpdated': PersonalModelUpdated,
  'aimass.v1.ConsentChanged': ConsentChanged,
  'aimass.v1.ErasureRequested': ErasureRequested,
  'aimass.v1.ErasureCompleted': ErasureCompleted,
  'aimass.v1.GeneralModelVersionChanged': GeneralModelVersionChanged,
  'aimass.v1.TenantDeleted': TenantDeleted,
  'aimass.v1.TenantDeletionCompleted': TenantDeletionCompleted,
  'aimass.v1.DeadLetter': DeadLetter,
};

/** The codec for an event type name; undefined for a type this build does not know. */
export function eventCodec<K extends EventType>(type: K): MessageCodec<EventMessages[K]>;
export function eventCodec(type: string): MessageCodec<EventMessage> | undefined;
export function eventCodec(type: string): MessageCodec<EventMessage> | undefined {
  return Object.hasOwn(EVENT_TYPES, type) ? (EVENT_TYPES[type as EventType] as MessageCodec<EventMessage>) : undefined;
}
