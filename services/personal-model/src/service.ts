import type { z } from 'zod';
import { setupServiceAuth, type AuthConfigInput } from '@aimass/auth';
import { createGrpcServer, grpcConfigSchema, type BoundAddress, type GrpcServer, type Logger } from '@aimass/platform';
import { SERVICE_NAMES, loadDescriptorSet, v1 } from '@aimass/proto';
import { ConsentCache, PrivacyConsentLookup, type ConsentCacheStats, type ConsentLookup } from '@aimass/consent';
import { AES_256_GCM, AesGcmSealer, PrivacyDataKeySource, type DataKeySource } from '@aimass/crypto';
import { plaintextSealer, startErasureParticipant, startTenantDeletionParticipant, type ErasureParticipant, type EventBus, type TenantDeletionParticipant } from '@aimass/events';
import type { DocumentStore } from '@aimass/storage';
import { PersonalModelStore } from './adapters/model-store.js';
import { TenantTombstones } from '@aimass/storage';
import { personalModelConfigSchema, type PersonalModelConfigInput } from './config.js';
import { createPersonalModelService } from './grpc/personal-model-service.js';
import { ConsentCheckingModels, type ConsentEnforcementStats } from './runtime/consent-checking-models.js';
import { ModelEvents, PRODUCER } from './runtime/model-events.js';
import { PersonalModels, type PersonalModelsStats } from './runtime/personal-models.js';
import { forgetTenantLive, personalModelTenantDeletion } from './runtime/tenant-deletion.js';

/** The gRPC services this process serves (for health checks). */
export const PERSONAL_MODEL_GRPC_SERVICES: readonly string[] = [SERVICE_NAMES.personalModel];

export interface RunningPersonalModel {
  /** host:port of the gRPC server. */
  readonly address: string;
  readonly port: number;
  readonly server: GrpcServer;
  /** The users' models (cache, store, learner), for tests and tools in the same process. */
  readonly models: PersonalModels;
  readonly store: PersonalModelStore;
  /** The PersonalModelUpdated publisher and subscriber, when started with a bus. */
  readonly events: ModelEvents | undefined;
  /** This replica's part of the erasure saga, when started with a bus. */
  readonly erasure: ErasureParticipant | undefined;
  /** This replica's part of tenant deletions (TenantDeleted → the tenant's data deleted → TenantDeletionCompleted), when started with a bus. */
  readonly tenantDeletion?: TenantDeletionParticipant | undefined;
  /** How stored parameters are sealed: with users' data keys, or `none` (no privacy service configured). */
  readonly encryption: typeof AES_256_GCM | 'none';
  stats(): PersonalModelsStats;
  /** The consent cache's counters and what enforcement withheld or refused; undefined when consent is not enforced. */
  consentStats(): (ConsentCacheStats & ConsentEnforcementStats) | undefined;
  /**
   * Releases what the service started (after the server has drained): the erasure consumer, the
   * consent subscription, the model events, and the privacy clients it created. The store, the bus
   * and injected `keys` belong to the caller and stay open.
   */
  close(): Promise<void>;
  /** Drains the server, then closes. */
  stop(): Promise<void>;
}

export interface PersonalModelDependencies {
  store: DocumentStore;
  /**
   * With a bus, every write is announced (PersonalModelUpdated, before the call is answered) and
   * other replicas' announcements drop cached models at once, and the service takes part in
   * erasures (ErasureRequested → DeleteUser's deletion → ErasureCompleted). Without one, replicas
   * see each other's writes after at most `cache.revalidateMs`.
   */
  bus?: EventBus | undefined;
  /**
   * Users' data keys that seal stored parameters (tests inject a `DataKeyRing`). By default a
   * `PrivacyDataKeySource` at `personalModel.privacy.address`; without an address, parameters are
   * stored in clear. `forget`, when present, is called at each erasure.
   */
  keys?: ForgettableDataKeySource | undefined;
  /**
   * How the consent cache reads a user it does not hold (tests inject their own). By default the
   * privacy service's GetConsent at `personalModel.privacy.address`; without either, consent is not
   * enforced. Enforcement needs `bus`: ConsentChanged keeps the cache current.
   */
  consentLookup?: ConsentLookup | undefined;
}

/** A `DataKeySource` that can drop a user's keys from memory (`DataKeyRing`, `PrivacyDataKeySource`). */
export type ForgettableDataKeySource = DataKeySource & { forget?(tenant: string, userPseudonym: string): void; forgetAll?(): void };

/**
 * Starts the personal-model service on `store` (opened by the caller: SQLite in the one-process
 * mode and tests, MongoDB in a cluster): its collections, the model cache, the model events when
 * a bus is given, the gRPC server. With `personalModel.privacy.address` (or injected `keys` /
 * `consentLookup`) stored parameters are sealed with users' data keys and consent is enforced.
 */
export async function startPersonalModel(
  config: {
    grpc: z.input<typeof grpcConfigSchema>;
    personalModel?: PersonalModelConfigInput | undefined;
    /** Authentication: personal-model is internal, so in mode api-keys it takes platform service tokens only. */
    auth?: AuthConfigInput | undefined;
  },
  logger: Logger,
  deps: PersonalModelDependencies,
): Promise<RunningPersonalModel> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const pm = personalModelConfigSchema.parse(config.personalModel ?? {});
  const { privacy } = pm;
  const consentLookupGiven = deps.consentLookup !== undefined;
  if ((privacy.address !== undefined || consentLookupGiven) && !deps.bus) {
    throw new TypeError(
      'startPersonalModel: consent enforcement (personalModel.privacy.address) needs the event bus that carries ConsentChanged: give it a bus (events.kind nats), or unset the address',
    );
  }
  // Undone in reverse on a failed start and at stop.
  const cleanups: (() => unknown)[] = [];
  const cleanUp = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        logger.warn({ err }, 'releasing a resource of personal-model failed');
      }
    }
  };

  // Internal only: no API key is ever accepted here, so no credential lookup either.
  const auth = setupServiceAuth({ config: config.auth, service: 'personal-model', logger, acceptsApiKeys: false });
  cleanups.push(() => auth.close());
  let keys = deps.keys;
  if (!keys && privacy.address !== undefined) {
    const remote = new PrivacyDataKeySource({ address: privacy.address, ...privacy.keys, client: { interceptors: auth.clientInterceptors } });
    cleanups.push(() => remote.close());
    keys = remote;
  }
  const sealer = keys ? new AesGcmSealer({ keys, allowPlaintext: privacy.allowPlaintext }) : plaintextSealer();
  let consent: { cache: ConsentCache; models: ConsentCheckingModels } | undefined;
  let store: PersonalModelStore;
  let events: ModelEvents | undefined;
  let models: PersonalModels;
  let erasure: ErasureParticipant | undefined;
  let tenantDeletion: TenantDeletionParticipant | undefined;
  let server: GrpcServer;
  let bound: BoundAddress;
  try {
    // Versions of a deleted tenant are never written again (see runtime/tenant-deletion.ts).
    const tenantTombstones = await TenantTombstones.open(deps.store);
    store = await PersonalModelStore.open(deps.store, { sealer, tenantTombstones });
    events = deps.bus ? new ModelEvents(deps.bus, logger) : undefined;
    models = new PersonalModels({
      store,
      logger,
      cacheMaxBytes: pm.cache.maxBytes,
      revalidateMs: pm.cache.revalidateMs,
      versionsKept: pm.versionsKept,
      learner: pm.learner,
      labels: pm.labels,
      sparseDimension: pm.sparseDimension,
      pruning: pm.pruning,
      announce: events?.announce,
      // An erasure (ErasureRequested or DeleteUser) also drops the user's key and consent held in
      // memory: the key is already destroyed at the privacy service, and nothing of the user stays.
      onErase: (tenant, user) => {
        keys?.forget?.(tenant, user);
        consent?.cache.forget(tenant, user);
      },
    });
    // Listening before serving: no write of this replica can precede the stream or the subscription.
    const started = events;
    if (started) {
      await started.start(models);
      cleanups.push(() => started.stop());
    }
    const lookup = deps.consentLookup ?? (privacy.address !== undefined ? ownLookup(new PrivacyConsentLookup(privacy.address, { callTimeoutMs: privacy.lookupTimeoutMs, interceptors: auth.clientInterceptors }), cleanups) : undefined);
    if (lookup && deps.bus) {
      // Subscribed before serving, so no change made after the first call can go unseen.
      const cache = await ConsentCache.start({
        bus: deps.bus,
        lookup,
        ...privacy.cache,
        onError: (err: unknown) => logger.warn({ err }, 'consent cache: a lookup failed or an event could not be read; refusing what it cannot verify'),
      });
      cleanups.push(() => cache.close());
      consent = { cache, models: new ConsentCheckingModels(models, cache) };
    }
    const bus = deps.bus;
    if (bus) {
      const participant = await startErasureParticipant({
        bus,
        service: PRODUCER,
        consumer: pm.erasure,
        logger,
        // DeleteUser's deletion: the user's key and consent dropped from memory, versions,
        // pointer, idempotency records, the cached copy, and PersonalModelUpdated version 0 for
        // the other replicas. A redelivery finds nothing and confirms again.
        erase: async (r) => ({ itemsDeleted: await models.deleteUser(r.tenant, r.userPseudonym, r.erasureId) }),
      });
      // Closed before the caches it uses (cleanups run in reverse).
      cleanups.push(() => participant.close());
      erasure = participant;
      const modelsOf = models;
      const forgetTenant = (tenant: string) => {
        keys?.forgetAll?.();
        consent?.cache.forgetTenant(tenant);
        modelsOf.forgetTenant(tenant);
      };
      const live = await forgetTenantLive(bus, forgetTenant, logger);
      cleanups.push(() => live.close());
      const deletion = await startTenantDeletionParticipant({
        bus,
        service: PRODUCER,
        consumer: pm.tenantDeletion,
        logger,
        deleteTenant: personalModelTenantDeletion({ store, tombstones: tenantTombstones, models, bus, forget: forgetTenant }),
      });
      cleanups.push(() => deletion.close());
      tenantDeletion = deletion;
    }
    server = createGrpcServer({
      config: grpc,
      logger,
      descriptorSet: loadDescriptorSet(),
      interceptors: auth.serverInterceptors,
      services: [{ definition: v1.PersonalModelServiceService, implementation: createPersonalModelService({ models: consent?.models ?? models, config: pm }) }],
    });
    bound = await server.start();
  } catch (err) {
    await cleanUp();
    throw err;
  }
  const encryption = keys ? AES_256_GCM : 'none';
  for (const name of PERSONAL_MODEL_GRPC_SERVICES) server.setServingStatus(name, 'SERVING');
  logger.info(
    {
      address: bound.address,
      store: deps.store.kind,
      events: events !== undefined,
      erasureGroup: erasure?.consumer.durable,
      cacheMaxBytes: pm.cache.maxBytes,
      versionsKept: pm.versionsKept,
      // off / none: no privacy service configured, a development set-up.
      privacy: privacy.address ?? (keys || consent ? 'injected' : 'off'),
      consent: consent ? 'enforced' : 'off',
      encryption,
      allowPlaintext: keys ? privacy.allowPlaintext : undefined,
    },
    'personal-model serving',
  );
  const enforcement = consent;
  return {
    address: bound.address,
    port: bound.port,
    server,
    models,
    store,
    events,
    erasure,
    tenantDeletion,
    encryption,
    stats: () => models.stats(),
    consentStats: () => (enforcement ? { ...enforcement.cache.stats(), ...enforcement.models.stats() } : undefined),
    close: cleanUp,
    stop: async () => {
      await server.drain();
      await cleanUp();
    },
  };
}

/** The lookup of a `PrivacyConsentLookup` this service created, closed with the service. */
function ownLookup(lookup: PrivacyConsentLookup, cleanups: (() => unknown)[]): ConsentLookup {
  cleanups.push(() => lookup.close());
  return lookup.lookup;
}
