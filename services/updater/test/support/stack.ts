import { join } from 'node:path';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import {
  DEAD_LETTER_STREAM,
  FEEDBACK_STREAM,
  connectNatsBus,
  encodeEvent,
  feedbackSubject,
  newEnvelope,
  plaintextSealer,
  publishEvent,
  type DeliveredEvent,
  type NatsEventBus,
  type PayloadSealer,
} from '@aimass/events';
import { createPersonalFeaturizer } from '@aimass/ml';
import type { RunningGeneralModel } from '@aimass/general-model';
import { startPersonalModel, type RunningPersonalModel } from '@aimass/personal-model';
import { Pseudonymizer, TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, tempDir, type TempDir } from '@aimass/testing';
import { GeneralModelClient } from '../../src/adapters/general-model-client.js';
import type { UpdaterConfigInput } from '../../src/config.js';
import { startUpdater, type RunningUpdater, type UpdaterDependencies } from '../../src/service.js';
import { addToyGeneralModel, startGeneral } from './general.js';
import { captureLogs, type LogSink } from './logs.js';

export const SECRET = 'updater-test-secret-updater-test-secret!';
export const pseudonymizer = new Pseudonymizer({ rootSecret: SECRET });

const TEXTS = [
  'win free money now',
  'meeting agenda for the project review',
  'cheap pills free offer today',
  'notes from the team meeting',
  'claim your prize now',
  'lunch with the team on friday',
  'limited offer buy watches',
  'project review moved to tomorrow',
];

/** Updater settings that keep tests fast: short leases and back-offs, small windows. */
export const FAST_UPDATER: UpdaterConfigInput = {
  apply: { batchWindowMs: 10, retryInitialMs: 50, retryMaxMs: 500 },
  consumer: { maxDeliver: 3, backoffMs: [50, 100], ackWaitMs: 10_000, leaseTtlMs: 2_000 },
  sweep: { intervalMs: 0, graceMs: 0 },
  watch: { intervalMs: 0 },
  refit: { jobStaleMs: 2_000 },
  erasure: { backoffMs: [50, 100], ackWaitMs: 10_000, leaseTtlMs: 2_000 },
};

export interface PublishedFeedback {
  readonly eventId: string;
  readonly sequence: number;
  readonly duplicate: boolean;
}

export interface FeedbackOptions {
  readonly tenant: string;
  readonly user: string;
  /** Index into the test's texts. */
  readonly text?: number;
  readonly label?: string;
  readonly eventId?: string;
  /** Leave the general output out (the updater computes it). */
  readonly withoutGeneral?: boolean;
  /** Appended to the input text (the general output stays the text's without it). */
  readonly marker?: string;
}

export interface Stack {
  readonly nats: NatsServer;
  readonly dir: TempDir;
  /** The test's own connection: it publishes feedback as fusion does. */
  readonly bus: NatsEventBus;
  readonly general: RunningGeneralModel;
  readonly personal: RunningPersonalModel;
  readonly generalClient: GeneralModelClient;
  readonly logs: LogSink;
  readonly updaterDbPath: string;
  /** A new connection to the test's nats-server (closed by stop). */
  newBus(name: string): Promise<NatsEventBus>;
  /** An updater replica in this process (its own bus connection, the shared SQLite file). */
  startUpdater(config?: UpdaterConfigInput, deps?: Pick<UpdaterDependencies, 'keys' | 'sealer'>): Promise<RunningUpdater>;
  /** How the test seals the payloads it publishes, as fusion would (plaintext until set). */
  setSealer(sealer: PayloadSealer): void;
  /** Publishes a FeedbackRecorded as fusion does: sealed payloads, dedupe id = event id. */
  feedback(options: FeedbackOptions): Promise<PublishedFeedback>;
  /** The same event bytes again under another NATS message id (beyond the stream's dedupe). */
  republish(options: FeedbackOptions & { eventId: string }): Promise<PublishedFeedback>;
  /** The encoded FeedbackRecorded, for tests that tamper with it. */
  encodedFeedback(options: FeedbackOptions & { eventId: string }): Promise<{ subject: string; data: Uint8Array }>;
  personalCall<K extends PersonalMethod>(method: K, tenant: string, request: RequestOf<v1.PersonalModelServiceClient, K>): Promise<ResponseOf<v1.PersonalModelServiceClient, K>>;
  /** Every version of a user's model, oldest first. */
  versions(tenant: string, pseudonym: string): Promise<v1.PersonalModelInfo[]>;
  /** The user's current model; undefined without one. */
  model(tenant: string, pseudonym: string): Promise<v1.PersonalModelInfo | undefined>;
  adminCall<K extends AdminMethod>(address: string, method: K, tenant: string, request: RequestOf<v1.UpdaterAdminServiceClient, K>): Promise<ResponseOf<v1.UpdaterAdminServiceClient, K>>;
  /** Collects the dead letters of a consumer group as they arrive. */
  deadLetters(subject: string): Promise<DeliveredEvent[]>;
  stop(): Promise<void>;
}

type PersonalMethod = 'getModel' | 'listVersions' | 'score';
type AdminMethod = 'refitUser' | 'refitAll' | 'getTrainingState' | 'exportFeedback';
type Unary = (req: never, md: Metadata, opts: never, cb: never) => unknown;
type RequestOf<C, K extends keyof C> = Parameters<Extract<C[K], Unary>>[0];
type ResponseOf<C, K extends keyof C> = Parameters<Parameters<Extract<C[K], Unary>>[3]>[1];

function unaryCall<T>(client: object, method: string, tenant: string, request: unknown): Promise<T> {
  const md = new Metadata();
  md.set(TENANT_METADATA_KEY, tenant);
  return new Promise((resolve, reject) => {
    (client as Record<string, (...a: unknown[]) => unknown>)[method]!.call(client, request, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res: T) =>
      err ? reject(err) : resolve(res),
    );
  });
}

export async function startStack(options: { versionPolicy?: string; personalVersionsKept?: number } = {}): Promise<Stack> {
  const dir = await tempDir('updater-it-');
  const logs = captureLogs('updater-test');
  const nats = await NatsServer.start();
  const buses: NatsEventBus[] = [];
  const newBus = async (name: string) => {
    const b = await connectNatsBus({ servers: nats.url, name, pullExpiresMs: 1_000, reconnectTimeWaitMs: 100 });
    buses.push(b);
    return b;
  };
  const bus = await newBus('updater-test');
  for (const s of [FEEDBACK_STREAM, DEAD_LETTER_STREAM]) await bus.ensureStream(s);

  await addToyGeneralModel(dir.path, 1);
  const general = await startGeneral(dir.path, logs.logger, options.versionPolicy);
  const personalStore = await openSqliteStore({ path: ':memory:' });
  const personal = await startPersonalModel(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
      personalModel: { versionsKept: options.personalVersionsKept ?? 1000, erasure: { backoffMs: [50, 100], ackWaitMs: 10_000, leaseTtlMs: 2_000 } },
    },
    logs.logger,
    { store: personalStore, bus: await newBus('personal-model') },
  );
  const generalClient = new GeneralModelClient(general.address, { callTimeoutMs: 10_000, classifyBatch: 64 });
  const personalClient = new v1.PersonalModelServiceClient(personal.address, credentials.createInsecure());
  const adminClients = new Map<string, v1.UpdaterAdminServiceClient>();

  // General outputs of the test texts, once, as fusion would have recorded them.
  const outputs = new Map<number, v1.GeneralOutput>();
  {
    const inputs = TEXTS.map((value) => ({ kind: { $case: 'text' as const, value } }));
    const answer = await generalClient.classify('t0', undefined, inputs);
    answer.outputs.forEach((o, i) => outputs.set(i, o));
  }
  const featurizer = createPersonalFeaturizer();
  let sealer: PayloadSealer = plaintextSealer();

  const updaterDbPath = join(dir.path, 'updater.sqlite');
  const updaters: RunningUpdater[] = [];
  const stores: DocumentStore[] = [personalStore];

  const message = async (o: FeedbackOptions, eventId: string): Promise<v1.FeedbackRecorded> => {
    const pseudonym = pseudonymizer.pseudonymize(o.tenant, o.user);
    const index = (o.text ?? 0) % TEXTS.length;
    const text = o.marker ? `${TEXTS[index]!} ${o.marker}` : TEXTS[index]!;
    const input: v1.InputPayload = { kind: { $case: 'text', value: text } };
    const general = outputs.get(index)!;
    const f = featurizer.featurize({ text });
    const scope = { tenant: o.tenant, userPseudonym: pseudonym };
    const seal = (bytes: Uint8Array) => sealer.seal(scope, bytes, eventId);
    return {
      envelope: newEnvelope({ type: 'aimass.v1.FeedbackRecorded', tenant: o.tenant, userPseudonym: pseudonym, producer: 'fusion', eventId }),
      predictionId: '',
      label: o.label ?? (index % 2 === 0 ? 'spam' : 'ham'),
      input: await seal(v1.InputPayload.encode(input).finish()),
      idempotencyKey: '',
      generalModel: o.withoutGeneral ? undefined : general.model,
      generalOutput: o.withoutGeneral ? undefined : await seal(v1.GeneralOutput.encode(general).finish()),
      sparseFeatures: await seal(v1.SparseVector.encode({ dimension: f.dimension, indices: f.indices, values: f.values }).finish()),
    };
  };

  const stack: Stack = {
    nats,
    dir,
    bus,
    general,
    personal,
    generalClient,
    logs,
    updaterDbPath,
    newBus,
    setSealer(s) {
      sealer = s;
    },
    async startUpdater(config: UpdaterConfigInput = {}, deps = {}) {
      const store = await openSqliteStore({ path: updaterDbPath });
      stores.push(store);
      const merged: UpdaterConfigInput = {
        ...FAST_UPDATER,
        ...config,
        apply: { ...FAST_UPDATER.apply, ...config.apply },
        consumer: { ...FAST_UPDATER.consumer, ...config.consumer },
        sweep: { ...FAST_UPDATER.sweep, ...config.sweep },
        watch: { ...FAST_UPDATER.watch, ...config.watch },
        refit: { ...FAST_UPDATER.refit, ...config.refit },
        erasure: { ...FAST_UPDATER.erasure, ...config.erasure },
        personalModel: { address: personal.address, ...config.personalModel },
        generalModel: { address: general.address, ...config.generalModel },
      };
      const updater = await startUpdater({ grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, pseudonym: { secret: SECRET }, updater: merged }, logs.logger, {
        ...deps,
        store,
        bus: await newBus('updater'),
      });
      updaters.push(updater);
      return updater;
    },
    async feedback(o) {
      const eventId = o.eventId ?? crypto.randomUUID();
      const pseudonym = pseudonymizer.pseudonymize(o.tenant, o.user);
      const ack = await publishEvent(bus, feedbackSubject(o.tenant, pseudonym), 'aimass.v1.FeedbackRecorded', await message(o, eventId));
      return { eventId, sequence: ack.sequence, duplicate: ack.duplicate };
    },
    async republish(o) {
      const { subject, data } = await stack.encodedFeedback(o);
      const ack = await bus.publish(subject, data, { dedupeId: `again-${crypto.randomUUID()}`, headers: { 'aimass-event-type': 'aimass.v1.FeedbackRecorded' } });
      return { eventId: o.eventId, sequence: ack.sequence, duplicate: ack.duplicate };
    },
    async encodedFeedback(o) {
      const pseudonym = pseudonymizer.pseudonymize(o.tenant, o.user);
      return { subject: feedbackSubject(o.tenant, pseudonym), data: encodeEvent('aimass.v1.FeedbackRecorded', await message(o, o.eventId)) };
    },
    personalCall(method, tenant, request) {
      return unaryCall(personalClient, method, tenant, request);
    },
    async versions(tenant, pseudonym) {
      const out: v1.PersonalModelInfo[] = [];
      let pageToken = '';
      do {
        const res = await stack.personalCall('listVersions', tenant, { userPseudonym: pseudonym, page: { pageSize: 100, pageToken } });
        out.push(...res.versions);
        pageToken = res.nextPageToken;
      } while (pageToken !== '');
      return out.reverse();
    },
    async model(tenant, pseudonym) {
      try {
        return (await stack.personalCall('getModel', tenant, { userPseudonym: pseudonym, version: 0, includeParameters: false })).model;
      } catch (err) {
        if ((err as ServiceError).code === 5) return undefined;
        throw err;
      }
    },
    adminCall(address, method, tenant, request) {
      let client = adminClients.get(address);
      if (!client) {
        client = new v1.UpdaterAdminServiceClient(address, credentials.createInsecure());
        adminClients.set(address, client);
      }
      return unaryCall(client, method, tenant, request);
    },
    async deadLetters(subject) {
      const seen: DeliveredEvent[] = [];
      const b = await newBus('dead-letter-reader');
      await b.consume(
        { durable: `test-dlq-${crypto.randomUUID().slice(0, 8)}`, stream: DEAD_LETTER_STREAM.name, filterSubject: subject, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: 'aimass.deadletter.test-reader', leaseTtlMs: 2_000 },
        async (e) => void seen.push(e),
      );
      return seen;
    },
    async stop() {
      for (const u of updaters) await u.stop().catch(() => undefined);
      for (const c of adminClients.values()) c.close();
      personalClient.close();
      generalClient.close();
      await personal.stop();
      await general.stop();
      for (const b of buses) await b.close().catch(() => undefined);
      for (const s of stores) await s.close().catch(() => undefined);
      await nats.dispose();
      await dir.remove();
    },
  };
  return stack;
}
