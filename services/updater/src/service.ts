import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { setupServiceAuth, type AuthConfigInput } from '@aimass/auth';
import { ConsentCache, PrivacyConsentLookup, type ConsentCacheStats } from '@aimass/consent';
import { AesGcmSealer, PrivacyDataKeySource, type DataKeySource, type PrivacyDataKeySourceStats } from '@aimass/crypto';
import {
  ALL_FEEDBACK_PREFIX,
  DEAD_LETTER_STREAM,
  FEEDBACK_PARTITIONS,
  FEEDBACK_STREAM,
  MODEL_EVENTS_STREAM,
  deadLetterSubject,
  plaintextSealer,
  startErasureParticipant,
  startTenantDeletionParticipant,
  type ConsumerHandle,
  type ErasureParticipant,
  type EventBus,
  type PayloadSealer,
  type TenantDeletionParticipant,
} from '@aimass/events';
import { Pseudonymizer, UnavailableError, createGrpcServer, grpcConfigSchema, pseudonymConfigSchema, type GrpcServer, type Logger } from '@aimass/platform';
import { SERVICE_NAMES, loadDescriptorSet, v1 } from '@aimass/proto';
import type { DocumentStore } from '@aimass/storage';
import { GeneralModelClient } from './adapters/general-model-client.js';
import type { GroupedWriteStats } from './adapters/grouped-writes.js';
import { PersonalModelClient } from './adapters/personal-model-client.js';
import { UpdaterStore } from './adapters/updater-store.js';
import { updaterConfigSchema, type UpdaterConfig, type UpdaterConfigInput } from './config.js';
import { trainingConsent, type TrainingConsent } from './domain/consent.js';
import type { GeneralRef } from './domain/ids.js';
import { KeyedScheduler, type SchedulerStats } from './domain/scheduler.js';
import { createUpdaterAdminService } from './grpc/updater-admin-service.js';
import { Applier, type ApplierStats } from './runtime/applier.js';
import { UpdaterErasure } from './runtime/erasure.js';
import { GeneralWatch } from './runtime/general-watch.js';
import { Intake, type IntakeStats } from './runtime/intake.js';
import { RefitJobs } from './runtime/refit-jobs.js';
import { updaterTenantDeletion } from './runtime/tenant-deletion.js';
import { Refitter } from './runtime/refitter.js';

/** The gRPC services this process serves (for health checks). */
export const UPDATER_GRPC_SERVICES: readonly string[] = [SERVICE_NAMES.updaterAdmin];

export interface UpdaterDependencies {
  /** Feedback history, training state and refit jobs (the caller opens and closes it). */
  readonly store: DocumentStore;
  /** The event bus carrying FeedbackRecorded (the caller opens and closes it). */
  readonly bus: EventBus;
  /**
   * Users' data keys, in place of the privacy service's DataKeyService (tests: a DataKeyRing on a
   * key store they control). Payloads are then opened and sealed with `AesGcmSealer` over it.
   * `forget` is called at an erasure.
   */
  readonly keys?: UpdaterKeySource | undefined;
  /**
   * Opens the sealed payloads outright, overriding `keys` and `updater.privacy.address`. Without
   * either: `AesGcmSealer` over privacy's keys when the address is set, else `plaintextSealer()`
   * (development and tests only).
   */
  readonly sealer?: PayloadSealer | undefined;
}

/** Where the updater's data keys come from: a DataKeySource that can drop a user from memory. */
export interface UpdaterKeySource extends DataKeySource {
  forget?(tenant: string, pseudonym: string): void;
  /** Drops every key held in memory (a tenant deletion). */
  forgetAll?(): void;
}

export interface UpdaterStartConfig {
  grpc: z.input<typeof grpcConfigSchema>;
  pseudonym: z.input<typeof pseudonymConfigSchema>;
  updater?: UpdaterConfigInput | undefined;
  /** Authentication: in mode api-keys, admin-scoped API keys (checked through fusion's CredentialService) or platform service tokens (ExportFeedback). */
  auth?: AuthConfigInput | undefined;
}

export interface UpdaterStats {
  readonly intake: IntakeStats;
  readonly applier: ApplierStats;
  readonly scheduler: SchedulerStats;
  /** The intake's and the applier's writes, and the transactions they took (grouped when they coincide). */
  readonly writes: GroupedWriteStats;
  readonly refitJobsRunning: number;
  readonly erasure: { readonly completed: number; readonly failures: number; readonly undoneWrites: number };
  /** The consent cache (undefined when consent is not enforced: no `updater.privacy.address`). */
  readonly consent: ConsentCacheStats | undefined;
  /** Users' keys fetched from the privacy service (undefined when they come from elsewhere or there are none). */
  readonly keys: PrivacyDataKeySourceStats | undefined;
}

export interface RunningUpdater {
  /** host:port of the gRPC server (UpdaterAdminService). */
  readonly address: string;
  readonly port: number;
  readonly server: GrpcServer;
  /** The feedback consumer of this replica. */
  readonly consumer: ConsumerHandle;
  /** This replica's member of the erasure consumer group. */
  readonly erasure: ErasureParticipant;
  /** This replica's member of the tenant deletion consumer group. */
  readonly tenantDeletion: TenantDeletionParticipant;
  readonly config: UpdaterConfig;
  stats(): UpdaterStats;
  /** Schedules every user left pending (the sweep also runs at start and every `sweep.intervalMs`). */
  sweep(options?: { graceMs?: number }): Promise<number>;
  /** Checks the general model's served version now (also every `watch.intervalMs`). */
  checkGeneral(): Promise<void>;
  /** Resolves once no update is scheduled or running and no refit job runs here (tests). */
  whenIdle(): Promise<void>;
  /** Stops consuming, updating and refitting (after the server has drained); the store and the bus stay open. */
  close(): Promise<void>;
  /** Drains the server, then closes. */
  stop(): Promise<void>;
}

const userKey = (tenant: string, pseudonym: string) => `${tenant}/${pseudonym}`;

/** The name the updater confirms erasures under (privacy's `erasure.services`). */
export const UPDATER_ERASURE_SERVICE = 'updater';

function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/**
 * Starts the updater: its collections, the clients of personal-model and general-model, the
 * durable feedback consumer (shared with every other replica through the bus's partitions), the
 * per-user applier, refit jobs, the general model watch, the sweep, and the gRPC server with
 * aimass.v1.UpdaterAdminService. The downstream services need not be up yet: updates wait and
 * retry until they are.
 */
export async function startUpdater(config: UpdaterStartConfig, logger: Logger, deps: UpdaterDependencies): Promise<RunningUpdater> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const cfg = updaterConfigSchema.parse(config.updater ?? {});
  const pseudonymizer = Pseudonymizer.fromConfig(pseudonymConfigSchema.parse(config.pseudonym));
  const { bus } = deps;
  const owner = randomUUID();
  const auth = setupServiceAuth({ config: config.auth, service: 'updater', logger });

  const store = await UpdaterStore.open(deps.store);
  for (const stream of [FEEDBACK_STREAM, DEAD_LETTER_STREAM, MODEL_EVENTS_STREAM]) await bus.ensureStream(stream);

  // One switch, the privacy address: users' keys from its DataKeyService and consent enforced.
  const privacy = cfg.privacy;
  const ownKeys = !deps.sealer && !deps.keys && privacy.address !== undefined ? new PrivacyDataKeySource({ address: privacy.address, ...privacy.keys, client: { interceptors: auth.clientInterceptors } }) : undefined;
  const keys: UpdaterKeySource | undefined = deps.sealer ? undefined : (deps.keys ?? ownKeys);
  const sealer = deps.sealer ?? (keys ? new AesGcmSealer({ keys, allowPlaintext: privacy.allowPlaintext }) : plaintextSealer());
  let consent: { cache: ConsentCache; lookup: PrivacyConsentLookup; check: TrainingConsent } | undefined;
  if (privacy.address !== undefined) {
    const lookup = new PrivacyConsentLookup(privacy.address, { callTimeoutMs: privacy.lookupTimeoutMs, interceptors: auth.clientInterceptors });
    try {
      // Subscribed before consuming, so no withdrawal made after the first event can go unseen.
      const cache = await ConsentCache.start({
        bus,
        lookup: lookup.lookup,
        ...privacy.cache,
        onError: (err: unknown) => logger.warn({ err }, 'consent cache: a lookup failed or an event could not be read; feedback waits until consent can be verified'),
      });
      consent = { cache, lookup, check: trainingConsent((tenant, pseudonym) => cache.check(tenant, pseudonym, 'training')) };
    } catch (err) {
      lookup.close();
      ownKeys?.close();
      auth.close();
      throw err;
    }
  }

  const personal = new PersonalModelClient(cfg.personalModel.address, { callTimeoutMs: cfg.personalModel.callTimeoutMs, interceptors: auth.clientInterceptors });
  const general = new GeneralModelClient(cfg.generalModel.address, { callTimeoutMs: cfg.generalModel.callTimeoutMs, classifyBatch: cfg.generalModel.classifyBatch, interceptors: auth.clientInterceptors });
  const closeClients = () => {
    personal.close();
    general.close();
    consent?.lookup.close();
    ownKeys?.close();
    auth.close();
  };

  // The scheduler is created below; erasures only run once the consumer starts, after it exists.
  const exclusive = <T>(tenant: string, pseudonym: string, fn: () => Promise<T>): Promise<T> => scheduler.exclusive(userKey(tenant, pseudonym), fn);
  const erasure = new UpdaterErasure({
    store,
    personal,
    bus,
    logger,
    exclusive,
    forget: (tenant, pseudonym) => {
      keys?.forget?.(tenant, pseudonym);
      consent?.cache.forget(tenant, pseudonym);
    },
  });
  const refitter = new Refitter({
    store,
    personal,
    general,
    sealer,
    logger,
    maxExamples: cfg.refit.maxExamples,
    maxRequestBytes: cfg.personalModel.maxRequestBytes,
    maxConflicts: cfg.apply.maxConflicts,
    erasure,
    consent: consent?.check,
  });
  const applier = new Applier({
    store,
    personal,
    general,
    refitter,
    sealer,
    logger,
    maxBatch: cfg.apply.maxBatch,
    maxRequestBytes: cfg.personalModel.maxRequestBytes,
    maxConflicts: cfg.apply.maxConflicts,
    served: (): GeneralRef | undefined => watch.served(),
    resolveServed: async (): Promise<GeneralRef> => {
      const served = await watch.resolve();
      if (!served) throw new UnavailableError('the general model serves no version of the followed model yet');
      return served;
    },
    erasure,
    consent: consent?.check,
  });
  const scheduler = new KeyedScheduler({
    windowMs: cfg.apply.batchWindowMs,
    concurrency: cfg.apply.concurrency,
    retryInitialMs: cfg.apply.retryInitialMs,
    retryMaxMs: cfg.apply.retryMaxMs,
    run: (key): Promise<void> => {
      const [tenant, pseudonym] = splitKey(key);
      return applier.apply(tenant, pseudonym);
    },
    onError: (key, err, attempt, retryInMs) => {
      const [tenant, pseudonym] = splitKey(key);
      logger.warn({ err, tenant, pseudonym, attempt, retryInMs }, 'personal model update failed; the feedback stays pending and is retried');
    },
  });
  const jobs = new RefitJobs({
    store,
    personal,
    refitter,
    logger,
    owner,
    concurrency: cfg.refit.concurrency,
    jobStaleMs: cfg.refit.jobStaleMs,
    exclusive,
    afterRefit: (tenant, pseudonym) => scheduler.mark(userKey(tenant, pseudonym)),
  });
  const watch = new GeneralWatch({ store, general, bus, jobs, logger, model: cfg.generalModel.model });

  const stopping = new AbortController();
  const intake = new Intake({
    store,
    sealer,
    encrypting: keys !== undefined,
    consent: consent?.check,
    logger,
    signal: stopping.signal,
    onAppended: (tenant, pseudonym) => scheduler.mark(userKey(tenant, pseudonym)),
    purgeSubject: (subject) => bus.purge(FEEDBACK_STREAM.name, subject),
  });

  const sweep = async (options: { graceMs?: number } = {}): Promise<number> => {
    const graceMs = options.graceMs ?? cfg.sweep.graceMs;
    const before = Date.now() - graceMs;
    let found = 0;
    for (const tenant of await store.tenants()) {
      let cursor: string | undefined;
      do {
        const page = await store.pendingUsers(tenant, cursor);
        for (const u of page.users) {
          if (u.updatedAt.getTime() > before) continue;
          found++;
          scheduler.mark(userKey(tenant, u.pseudonym));
        }
        cursor = page.nextCursor;
      } while (cursor);
    }
    await jobs.takeOverAbandoned();
    return found;
  };

  let consumer: ConsumerHandle | undefined;
  let participant: ErasureParticipant | undefined;
  let tenantDeletion: TenantDeletionParticipant | undefined;
  let server: GrpcServer | undefined;
  let bound;
  try {
    participant = await startErasureParticipant({ bus, service: UPDATER_ERASURE_SERVICE, consumer: cfg.erasure, logger, erase: erasure.erase });
    tenantDeletion = await startTenantDeletionParticipant({
      bus,
      service: UPDATER_ERASURE_SERVICE,
      consumer: cfg.tenantDeletion,
      logger,
      deleteTenant: updaterTenantDeletion({
        store,
        bus,
        forget: (tenant) => {
          keys?.forgetAll?.();
          consent?.cache.forgetTenant(tenant);
        },
      }),
    });
    consumer = await bus.consume(
      {
        durable: cfg.consumer.durable,
        stream: FEEDBACK_STREAM.name,
        filterSubject: ALL_FEEDBACK_PREFIX,
        partitions: FEEDBACK_PARTITIONS,
        maxDeliver: cfg.consumer.maxDeliver,
        backoffMs: cfg.consumer.backoffMs,
        ackWaitMs: cfg.consumer.ackWaitMs,
        leaseTtlMs: cfg.consumer.leaseTtlMs,
        deadLetterSubject: deadLetterSubject(cfg.consumer.durable),
        onError: (err, event) => logger.debug({ err, subject: event?.subject, sequence: event?.sequence }, 'feedback consumer reported a failure'),
      },
      intake.handle,
    );
    const handle = consumer;
    server = createGrpcServer({
      config: grpc,
      logger,
      descriptorSet: loadDescriptorSet(),
      interceptors: auth.serverInterceptors,
      services: [
        {
          definition: v1.UpdaterAdminServiceService,
          implementation: createUpdaterAdminService({
            store,
            personal,
            general,
            jobs,
            pseudonymizer,
            defaultModel: cfg.generalModel.model,
            consumerLag: () => handle.pending().catch(() => undefined),
            sealer,
            exportLimits: cfg.export,
          }),
        },
      ],
    });
    bound = await server.start();
  } catch (err) {
    stopping.abort();
    await consumer?.close().catch(() => undefined);
    await participant?.close().catch(() => undefined);
    await tenantDeletion?.close().catch(() => undefined);
    await consent?.cache.close().catch(() => undefined);
    closeClients();
    throw err;
  }
  const runningParticipant = participant;
  const runningTenantDeletion = tenantDeletion;
  for (const name of UPDATER_GRPC_SERVICES) server.setServingStatus(name, 'SERVING');
  const runningConsumer = consumer;
  const runningServer = server;

  // Background work: its failures are logged and retried at the next interval.
  const background = new Set<Promise<unknown>>();
  const track = (what: string, work: () => Promise<unknown>) => {
    const p = work()
      .catch((err: unknown) => logger.warn({ err }, `${what} failed; retrying at the next interval`))
      .finally(() => background.delete(p));
    background.add(p);
  };
  track('sweep at start', () => sweep({ graceMs: 0 }).then((n) => n > 0 && logger.info({ users: n }, 'pending users found at start')));
  track('general model check', () => watch.check());
  const timers = [
    cfg.sweep.intervalMs > 0 ? setInterval(() => track('sweep', () => sweep()), cfg.sweep.intervalMs) : undefined,
    cfg.watch.intervalMs > 0 ? setInterval(() => track('general model check', () => watch.check()), cfg.watch.intervalMs) : undefined,
  ].filter((t): t is NodeJS.Timeout => t !== undefined);
  for (const t of timers) t.unref();

  logger.info(
    {
      address: bound.address,
      personalModel: cfg.personalModel.address,
      generalModel: cfg.generalModel.address,
      durable: cfg.consumer.durable,
      batchWindowMs: cfg.apply.batchWindowMs,
      maxBatch: cfg.apply.maxBatch,
      store: deps.store.kind,
      // off: no privacy service configured, nothing is checked (development and tests).
      consent: consent ? { privacy: privacy.address, ttlMs: privacy.cache.ttlMs } : 'off',
      payloads: deps.sealer ? 'given sealer' : keys ? (ownKeys ? 'sealed with users\' keys from the privacy service' : 'sealed with users\' keys') : 'plaintext',
    },
    'updater serving',
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      for (const t of timers) clearInterval(t);
      stopping.abort();
      await runningConsumer.close();
      await intake.flushPurges();
      await runningParticipant.close();
      await runningTenantDeletion.close();
      await Promise.allSettled([...background]);
      await scheduler.stop();
      await jobs.stop();
      await consent?.cache.close().catch((err: unknown) => logger.warn({ err }, 'closing the consent subscription failed'));
      closeClients();
    })();
    return closing;
  };

  return {
    address: bound.address,
    port: bound.port,
    server: runningServer,
    consumer: runningConsumer,
    erasure: runningParticipant,
    tenantDeletion: runningTenantDeletion,
    config: cfg,
    stats: () => ({
      intake: intake.stats(),
      applier: applier.stats(),
      scheduler: scheduler.stats(),
      writes: store.writeStats(),
      refitJobsRunning: jobs.runningHere(),
      erasure: { ...runningParticipant.stats(), undoneWrites: erasure.undoneWrites() },
      consent: consent?.cache.stats(),
      keys: ownKeys?.stats(),
    }),
    sweep,
    checkGeneral: () => watch.check(),
    async whenIdle() {
      await scheduler.whenIdle();
      await jobs.whenIdle();
      await scheduler.whenIdle();
    },
    close,
    async stop() {
      await runningServer.drain();
      await close();
    },
  };
}
