import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import {
  ALL_CONSENT_CHANGED,
  CONSENT_STREAM,
  DEAD_LETTER_STREAM,
  connectNatsBus,
  deadLetterSubject,
  decodeEvent,
  type DeliveredEvent,
  type EventBus,
  type LiveEvent,
  type NatsEventBus,
} from '@aimass/events';
import { Pseudonymizer, TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, captureLogs, tempDir, type CapturedLogs, type TempDir } from '@aimass/testing';
import type { DataKeysConfigInput } from '@aimass/crypto';
import type { PrivacyConfigInput } from '../../src/config.js';
import { startPrivacy, type PrivacyDependencies, type RunningPrivacy } from '../../src/service.js';

export const SECRET = 'privacy-test-secret-privacy-test-secret!';
export const pseudonymizer = new Pseudonymizer({ rootSecret: SECRET });

/** A tenant key-encryption key for the tests' privacy services: the default of every tenant, random per test run. */
export const KEK = randomBytes(32).toString('base64');
/** The `dataKeys` section the test stacks start with. */
export const TEST_DATA_KEYS: DataKeysConfigInput = { kekSource: 'config', kekSecret: { default: KEK } };

export type LogSink = CapturedLogs;
export { captureLogs };

type Unary = (req: never, md: Metadata, opts: never, cb: never) => unknown;
type Method = { [K in keyof v1.PrivacyServiceClient]: v1.PrivacyServiceClient[K] extends Unary ? K : never }[keyof v1.PrivacyServiceClient];
type RequestOf<K extends Method> = Parameters<Extract<v1.PrivacyServiceClient[K], Unary>>[0];
type ResponseOf<K extends Method> = Parameters<NonNullable<Parameters<Extract<v1.PrivacyServiceClient[K], Unary>>[3]>>[1];

export interface CallOptions {
  /** Omit the tenant header. */
  readonly noTenant?: boolean;
  /** Omit the deadline. */
  readonly noDeadline?: boolean;
  readonly deadlineMs?: number;
}

/** A ConsentChanged as a live subscriber received it. */
export interface SeenEvent {
  readonly subject: string;
  readonly dedupeId: string | undefined;
  readonly event: v1.ConsentChanged;
  readonly raw: Uint8Array;
  readonly at: number;
}

export function call<K extends Method>(client: v1.PrivacyServiceClient, method: K, tenant: string, request: RequestOf<K>, options: CallOptions = {}): Promise<ResponseOf<K>> {
  const md = new Metadata();
  if (!options.noTenant) md.set(TENANT_METADATA_KEY, tenant);
  const callOptions = options.noDeadline ? {} : { deadline: Date.now() + (options.deadlineMs ?? 10_000) };
  return new Promise((resolve, reject) => {
    (client[method] as (...a: unknown[]) => unknown).call(client, request, md, callOptions, (err: ServiceError | null, res: ResponseOf<K>) => (err ? reject(err) : resolve(res)));
  });
}

/** The error a call fails with (the test fails when it succeeds). */
export async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

export function setRequest(userId: string, purpose: v1.Purpose, state: v1.ConsentState, more: Partial<v1.SetConsentRequest> = {}): v1.SetConsentRequest {
  return { userId, purpose, state, policyVersion: 'v1', source: 'web-settings', decidedAt: undefined, idempotencyKey: '', ...more };
}

/** A GetConsent naming the user by id, as the edge does (`more` may name it by pseudonym instead). */
export function getRequest(userId: string, purposes: v1.Purpose[] = [], more: Partial<v1.GetConsentRequest> = {}): v1.GetConsentRequest {
  return { userId, userPseudonym: '', purposes, ...more };
}

export const P = v1.Purpose;
export const S = v1.ConsentState;

export interface Stack {
  readonly nats: NatsServer;
  readonly dir: TempDir;
  readonly logs: LogSink;
  readonly dbPath: string;
  readonly privacy: RunningPrivacy;
  readonly client: v1.PrivacyServiceClient;
  /** Every ConsentChanged published since the stack started, as a live subscriber saw it. */
  readonly seen: SeenEvent[];
  /** Every ConsentChanged the stream stored, read by a durable consumer. */
  readonly stored: DeliveredEvent[];
  call<K extends Method>(method: K, tenant: string, request: RequestOf<K>, options?: CallOptions): Promise<ResponseOf<K>>;
  /** A new connection to the test's nats-server (closed by stop). */
  newBus(name: string): Promise<NatsEventBus>;
  /**
   * Another privacy service on the same SQLite file and nats-server, with its own configuration
   * (a replica, or the same deployment configured otherwise); stopped by stop.
   */
  replica(config?: PrivacyConfigInput, options?: StackOptions): Promise<Replica>;
  /** Runs SQL on the privacy store's file, as someone with access to the database would. */
  sql<T = unknown>(statement: string, ...params: unknown[]): T[];
  stop(): Promise<void>;
}

function seenFrom(e: LiveEvent): SeenEvent {
  return { subject: e.subject, dedupeId: e.dedupeId, event: decodeEvent('aimass.v1.ConsentChanged', e.data), raw: e.data, at: Date.now() };
}

export interface StackOptions {
  /** Another `dataKeys` section than TEST_DATA_KEYS. */
  readonly dataKeys?: DataKeysConfigInput | undefined;
  readonly addressOf?: PrivacyDependencies['addressOf'];
  /** What the service is given instead of the SQLite store (a wrapper that holds writes, for races). */
  readonly wrapStore?: ((store: DocumentStore) => DocumentStore) | undefined;
  /** What the service is given instead of its NATS bus (a wrapper that holds publishes, for races). */
  readonly wrapBus?: ((bus: EventBus) => EventBus) | undefined;
}

export interface Replica {
  readonly privacy: RunningPrivacy;
  readonly client: v1.PrivacyServiceClient;
  call<K extends Method>(method: K, tenant: string, request: RequestOf<K>, options?: CallOptions): Promise<ResponseOf<K>>;
}

/** A nats-server, a privacy service on a SQLite file, a gRPC client and event observers. */
export async function startStack(config: PrivacyConfigInput = {}, options: StackOptions = {}): Promise<Stack> {
  const dir = await tempDir('privacy-it-');
  const logs = captureLogs('privacy-test');
  const nats = await NatsServer.start();
  const buses: NatsEventBus[] = [];
  const newBus = async (name: string) => {
    // Short publish bounds: an outage answers within about a second instead of six.
    const b = await connectNatsBus({ servers: nats.url, name, pullExpiresMs: 1_000, reconnectTimeWaitMs: 100, publishTimeoutMs: 500, publishRetries: 1, publishRetryDelayMs: 50 });
    buses.push(b);
    return b;
  };
  const dbPath = join(dir.path, 'privacy.sqlite');
  const store: DocumentStore = await openSqliteStore({ path: dbPath });
  const privacy = await startPrivacy(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
      pseudonym: { secret: SECRET },
      dataKeys: options.dataKeys ?? TEST_DATA_KEYS,
      privacy: { ...config, outbox: { sweepIntervalMs: 0, ...config.outbox } },
    },
    logs.logger,
    { store: options.wrapStore ? options.wrapStore(store) : store, bus: (options.wrapBus ?? ((b: EventBus) => b))(await newBus('privacy')), addressOf: options.addressOf },
  );
  const client = new v1.PrivacyServiceClient(privacy.address, credentials.createInsecure());

  const observer = await newBus('observer');
  for (const s of [CONSENT_STREAM, DEAD_LETTER_STREAM]) await observer.ensureStream(s);
  const seen: SeenEvent[] = [];
  await observer.subscribe(ALL_CONSENT_CHANGED, (e) => void seen.push(seenFrom(e)));
  const stored: DeliveredEvent[] = [];
  await observer.consume(
    { durable: 'privacy-test-reader', stream: CONSENT_STREAM.name, filterSubject: ALL_CONSENT_CHANGED, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: deadLetterSubject('privacy-test'), leaseTtlMs: 2_000 },
    async (e) => void stored.push(e),
  );

  const replicas: Array<{ privacy: RunningPrivacy; client: v1.PrivacyServiceClient; store: DocumentStore }> = [];
  const replica = async (replicaConfig: PrivacyConfigInput = {}, replicaOptions: StackOptions = {}): Promise<Replica> => {
    const replicaStore = await openSqliteStore({ path: dbPath });
    const started = await startPrivacy(
      {
        grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
        pseudonym: { secret: SECRET },
        dataKeys: replicaOptions.dataKeys ?? TEST_DATA_KEYS,
        privacy: { ...replicaConfig, outbox: { sweepIntervalMs: 0, ...replicaConfig.outbox }, erasure: { sweepIntervalMs: 0, ...replicaConfig.erasure } },
      },
      logs.logger,
      { store: replicaStore, bus: await newBus(`privacy-replica-${replicas.length}`), addressOf: replicaOptions.addressOf },
    );
    const replicaClient = new v1.PrivacyServiceClient(started.address, credentials.createInsecure());
    replicas.push({ privacy: started, client: replicaClient, store: replicaStore });
    return { privacy: started, client: replicaClient, call: (method, tenant, request, callOptions) => call(replicaClient, method, tenant, request, callOptions) };
  };

  let db: Database.Database | undefined;
  return {
    nats,
    dir,
    logs,
    dbPath,
    privacy,
    client,
    seen,
    stored,
    call: (method, tenant, request, options) => call(client, method, tenant, request, options),
    newBus,
    replica,
    sql<T>(statement: string, ...params: unknown[]): T[] {
      db ??= new Database(dbPath);
      const prepared = db.prepare(statement);
      return (prepared.reader ? prepared.all(...params) : (prepared.run(...params), [])) as T[];
    },
    async stop() {
      for (const r of replicas) {
        r.client.close();
        await r.privacy.stop();
        await r.store.close();
      }
      client.close();
      db?.close();
      await privacy.stop();
      for (const b of buses) await b.close().catch(() => undefined);
      await store.close();
      await nats.dispose();
      await dir.remove();
    },
  };
}
