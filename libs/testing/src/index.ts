export { freePort } from './ports.js';
export { tempDir, type TempDir } from './tmp.js';
export { NatsServer, natsServerBinary, type NatsServerOptions } from './nats-server.js';
export { TestProcess, type StartProcessOptions } from './process.js';
export { healthStatus, reflectedServices } from './grpc-probes.js';
export { waitUntil } from './wait.js';
export { SlowProxy } from './slow-proxy.js';
