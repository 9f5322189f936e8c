export type {
  ConsumeOptions,
  ConsumerHandle,
  DeliveredEvent,
  EnsureStreamResult,
  EventBus,
  EventHandler,
  EventHeaders,
  PublishAck,
  PublishOptions,
  StreamSpec,
} from './types.js';
export { EventBusClosedError, EventBusError, EventBusUnavailableError } from './errors.js';
export { fnv1a32, keyedSubject, partitionFilter, partitionOf, subjectMatches } from './subjects.js';
export { backoffDelay, DeadLetterHeaders } from './delivery.js';
export { extractTraceContext, injectTraceContext } from './trace.js';
export { connectNatsBus, createNatsBus, NatsEventBus, type NatsBusOptions, type NatsBusSettings } from './nats/bus.js';
export { createInProcessBus, InProcessEventBus, type InProcessBusOptions } from './in-process/bus.js';
export { InProcessBroker, type InProcessBrokerOptions } from './in-process/broker.js';
