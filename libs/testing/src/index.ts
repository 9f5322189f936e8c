export { freePort } from './ports.js';
export { tempDir, type TempDir } from './tmp.js';
export { NatsServer, natsServerBinary, type NatsServerOptions, type NatsServerTls } from './nats-server.js';
export { makeTestPki, opensslBinary, type CertificateFiles, type TestPki } from './pki.js';
export { TestProcess, type StartProcessOptions } from './process.js';
export { healthStatus, reflectedServices } from './grpc-probes.js';
export { waitUntil } from './wait.js';
export { captureLogs, type CapturedLogs } from './logs.js';
export { SlowProxy } from './slow-proxy.js';
export {
  CLIENT_ERROR_CODES,
  INVALID_UTF8_MARKER,
  RawGrpcClient,
  TENANT_HEADER,
  checkHostile,
  deadlineIn,
  hasInvalidUtf8Marker,
  hostileArray,
  hostileDeadlineMs,
  hostileFloat32,
  hostileInt32,
  hostileNumber,
  hostileString,
  hostileTenant,
  hostileUint32,
  hostileRequests,
  printHostileReport,
  malformedBytes,
  malformedRequests,
  sendCase,
  type HostileCase,
  oversizedBody,
  tenantHeaders,
  withInvalidUtf8,
  type HostileRunOptions,
  type HostileRunReport,
  type HostileStringOptions,
  type RawCallOptions,
  type RawOutcome,
} from './hostile.js';
