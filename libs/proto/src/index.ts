// Public API of @aimass/proto: the generated contracts, plus what servers need around them.
//
// The generated code is exported as one namespace per protobuf package instead of flat named
// exports (the workspace's usual rule). Protobuf guarantees names are unique only within a
// package, and the KServe `inference` package and `aimass.v1` would otherwise have to be
// curated by hand on every .proto change; the namespaces mirror the proto names exactly
// (`aimass.v1.PredictRequest` is `v1.PredictRequest`). This is the only package allowed to do
// this, because its content is generated.

/** The AI Mass contracts, proto package `aimass.v1` (services, messages, enums, events). */
export * as v1 from './gen/index.aimass.v1.js';
/** The Open Inference Protocol (KServe v2 + Triton repository extension), proto package `inference`. */
export * as inference from './gen/index.inference.js';
/** The well-known types the contracts use (Timestamp, Duration, Struct, FieldMask). */
export * as protobuf from './gen/index.google.protobuf.js';

export { loadDescriptorSet, packageDefinition, DEFAULT_LOADER_OPTIONS } from './descriptor.js';
export { durationFromMs, durationToMs } from './duration.js';
export { SERVICE_NAMES, type ServiceKey } from './services.js';
export { EVENT_TYPES, eventCodec, type EventType, type EventMessage, type MessageCodec } from './events.js';
