import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  credentials,
  loadPackageDefinition,
  type Client,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createLogger, type GrpcServerConfig, type Logger } from '../src/index.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const ECHO_PROTO = join(FIXTURES, 'echo.proto');
export const ECHO_SERVICE = 'aimass.platformtest.v1.EchoService';

export interface EchoRequest {
  text: string;
  count: number;
}
export interface EchoResponse {
  text: string;
  attempt: number;
  trace_id: string;
}

export function loadEcho(): { definition: ServiceDefinition; Client: ServiceClientConstructor } {
  const pkg = loadSync(ECHO_PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const grpcObject = loadPackageDefinition(pkg);
  const v1 = ((grpcObject['aimass'] as GrpcObject)['platformtest'] as GrpcObject)['v1'] as GrpcObject;
  const Client = v1['EchoService'] as ServiceClientConstructor;
  return { definition: Client.service, Client };
}

/** A plain grpc-js client with none of the platform's interceptors (no default deadline). */
export function rawClient(address: string): Client & Record<string, (...args: unknown[]) => unknown> {
  const { Client } = loadEcho();
  return new Client(address, credentials.createInsecure()) as Client & Record<string, (...args: unknown[]) => unknown>;
}

export function serverConfig(overrides: Partial<GrpcServerConfig> = {}): GrpcServerConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    maxReceiveMessageBytes: 4 * 1024 * 1024,
    maxSendMessageBytes: 4 * 1024 * 1024,
    requireDeadline: true,
    drainTimeoutMs: 5_000,
    ...overrides,
  };
}

export interface CapturedLogs {
  logger: Logger;
  raw(): string;
  lines(): Array<Record<string, unknown>>;
}

export function captureLogs(service = 'test'): CapturedLogs {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ service, level: 'debug', destination });
  return {
    logger,
    raw: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The test proto compiled by buf into a FileDescriptorSet, as services will ship theirs. */
export function buildDescriptorSet(): Uint8Array {
  const out = join(mkdtempSync(join(tmpdir(), 'aimass-buf-')), 'set.binpb');
  execFileSync('npx', ['buf', 'build', FIXTURES, '-o', out], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
  return readFileSync(out);
}

export const deadlineIn = (ms: number) => Date.now() + ms;
