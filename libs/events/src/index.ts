export type {
  ConsumeOptions,
  ConsumerHandle,
  DeliveredEvent,
  EnsureStreamResult,
  EventBus,
  EventHandler,
  EventHeaders,
  LiveEvent,
  LiveHandler,
  PublishAck,
  PublishOptions,
  PurgeResult,
  StreamSpec,
  SubscribeOptions,
  Subscription,
} from './types.js';
export { EventBusClosedError, EventBusError, EventBusUnavailableError } from './errors.js';
export { fnv1a32, keyedSubject, partitionFilter, partitionOf, subjectMatches } from './subjects.js';
export { backoffDelay, DeadLetterHeaders } from './delivery.js';
export { extractTraceContext, injectTraceContext } from './trace.js';
export { connectNatsBus, createNatsBus, NatsEventBus, type NatsBusOptions, type NatsBusSettings } from './nats/bus.js';
export { createInProcessBus, InProcessEventBus, type InProcessBusOptions } from './in-process/bus.js';
export { InProcessBroker, type InProcessBrokerOptions } from './in-process/broker.js';
export { eventsConfigSchema, openConfiguredBus, type EventsConfig, type EventsConfigInput } from './config.js';
export {
  ALL_CONSENT_CHANGED,
  ALL_FEEDBACK_PREFIX,
  ALL_GENERAL_CHANGED,
  ALL_MODEL_UPDATED,
  CONSENT_STREAM,
  DEAD_LETTER_STREAM,
  FEEDBACK_PARTITIONS,
  FEEDBACK_STREAM,
  MODEL_EVENTS_STREAM,
  PLATFORM_STREAMS,
  consentChangedSubject,
  deadLetterSubject,
  feedbackPrefix,
  feedbackSubject,
  generalChangedSubject,
  modelUpdatedSubject,
} from './catalogue/subjects.js';
export {
  EVENT_SCHEMA_VERSION,
  EVENT_TYPE_HEADER,
  MalformedEventError,
  decodeEvent,
  encodeEvent,
  newEnvelope,
  publishEvent,
  type EnvelopeInit,
} from './catalogue/codec.js';
export { PLAINTEXT_ALGORITHM, PayloadUnreadableError, plaintextSealer, type PayloadSealer, type SealScope } from './catalogue/sealer.js';
export { ALL_ERASURE_COMPLETED, ALL_ERASURE_REQUESTED, ERASURE_STREAM, erasureCompletedSubject, erasureRequestedSubject } from './catalogue/subjects.js';
export { ALL_TENANT_DELETED, ALL_TENANT_DELETION_COMPLETED, TENANT_STREAM, tenantDeletedSubject, tenantDeletionCompletedSubject } from './catalogue/subjects.js';
export {
  parseTenantDeleted,
  startTenantDeletionParticipant,
  tenantDeletedEventId,
  tenantDeletionCompletedEvent,
  tenantDeletionCompletedEventId,
  tenantDeletionConsumerConfigSchema,
  type TenantDeletionOutcome,
  type TenantDeletionParticipant,
  type TenantDeletionParticipantOptions,
  type TenantDeletionRequest,
} from './catalogue/tenant-deletion.js';
export {
  ERASURE_SERVICE_PATTERN,
  derivedEventId,
  erasureCompletedEvent,
  erasureCompletedEventId,
  erasureConsumerConfigSchema,
  erasureRequestedEventId,
  parseErasureRequested,
  startErasureParticipant,
  type ErasureConsumerConfig,
  type ErasureConsumerConfigInput,
  type ErasureLogger,
  type ErasureOutcome,
  type ErasureParticipant,
  type ErasureParticipantOptions,
  type ErasureParticipantStats,
  type ErasureRequest,
} from './catalogue/erasure.js';
