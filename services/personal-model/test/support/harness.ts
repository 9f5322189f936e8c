import { Writable } from 'node:stream';
import { join } from 'node:path';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { INVALID_FIELD_KEY, TENANT_METADATA_KEY, createLogger, pseudonymize, type Logger } from '@aimass/platform';
import type { EventBus } from '@aimass/events';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, type TempDir } from '@aimass/testing';
import type { PersonalModelConfigInput } from '../../src/config.js';
import { startPersonalModel, type PersonalModelDependencies, type RunningPersonalModel } from '../../src/service.js';

export function quietLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    logger: createLogger({ service: 'personal-model-test', level: 'info', destination }),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A well-formed pseudonym for a test user name (as fusion's Pseudonymizer would make one). */
export function pseudonymOf(name: string, tenant = 'acme'): string {
  return pseudonymize('test-secret-test-secret-test-secret!', tenant, name);
}

export interface Harness {
  readonly service: RunningPersonalModel;
  readonly store: DocumentStore;
  readonly client: v1.PersonalModelServiceClient;
  readonly dir: TempDir;
  readonly dbPath: string;
  call<K extends UnaryName>(method: K, request: RequestOf<K>, options?: { tenant?: string | null; deadlineMs?: number }): Promise<ResponseOf<K>>;
  /** Restarts the service on the same SQLite file (a cold process); `deps` replace the injected keys and consent lookup. */
  restart(config?: PersonalModelConfigInput, deps?: InjectedDependencies): Promise<void>;
  close(): Promise<void>;
}

type UnaryName = 'score' | 'train' | 'getModel' | 'listVersions' | 'rollback' | 'deleteUser' | 'refit';
type Method<K extends UnaryName> = v1.PersonalModelServiceClient[K];
type RequestOf<K extends UnaryName> = Parameters<Extract<Method<K>, (req: never, md: Metadata, opts: never, cb: never) => unknown>>[0];
type ResponseOf<K extends UnaryName> = Parameters<Parameters<Extract<Method<K>, (req: never, md: Metadata, opts: never, cb: never) => unknown>>[3]>[1];

export interface HarnessOptions {
  /** Started with this bus (model events); the bus stays the caller's. */
  bus?: EventBus | undefined;
  /** Another replica on the same SQLite file; a fresh file in a temporary directory by default. */
  dbPath?: string | undefined;
  /** Users' data keys and the consent lookup (privacy tests). */
  deps?: InjectedDependencies | undefined;
}

export type InjectedDependencies = Pick<PersonalModelDependencies, 'keys' | 'consentLookup'>;

export async function startHarness(config: PersonalModelConfigInput = {}, options: HarnessOptions = {}): Promise<Harness> {
  const dir = await tempDir('pm-test-');
  const dbPath = options.dbPath ?? join(dir.path, 'personal-model.sqlite');
  let store = await openSqliteStore({ path: dbPath });
  const { logger } = quietLogger();
  let deps = options.deps ?? {};
  const start = (c: PersonalModelConfigInput) =>
    startPersonalModel({ grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, personalModel: c }, logger, { store, bus: options.bus, ...deps });
  let service = await start(config);
  let client = new v1.PersonalModelServiceClient(service.address, credentials.createInsecure());
  const harness: Harness = {
    get service() {
      return service;
    },
    get store() {
      return store;
    },
    get client() {
      return client;
    },
    dir,
    dbPath,
    call(method, request, options = {}) {
      const metadata = new Metadata();
      const tenant = options.tenant === undefined ? 'acme' : options.tenant;
      if (tenant !== null) metadata.set(TENANT_METADATA_KEY, tenant);
      return new Promise((resolve, reject) => {
        const fn = client[method] as unknown as (r: unknown, md: Metadata, o: { deadline: Date }, cb: (err: ServiceError | null, res: unknown) => void) => unknown;
        fn.call(client, request, metadata, { deadline: new Date(Date.now() + (options.deadlineMs ?? 10_000)) }, (err, res) => (err ? reject(err) : resolve(res as never)));
      });
    },
    async restart(c = config, d = deps) {
      deps = d;
      client.close();
      await service.stop();
      await store.close();
      store = await openSqliteStore({ path: dbPath });
      service = await start(c);
      client = new v1.PersonalModelServiceClient(service.address, credentials.createInsecure());
    },
    async close() {
      client.close();
      await service.stop();
      await store.close();
      await dir.remove();
    },
  };
  return harness;
}

/** Awaits a call expected to fail and returns its gRPC error. */
export async function failure(promise: Promise<unknown>): Promise<ServiceError & { field: string | undefined }> {
  try {
    await promise;
  } catch (err) {
    const e = err as ServiceError;
    const field = e.metadata?.get(INVALID_FIELD_KEY)[0];
    return Object.assign(e, { field: typeof field === 'string' ? field : undefined });
  }
  throw new Error('expected the call to fail');
}
