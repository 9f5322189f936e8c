import type { Interceptor } from '@grpc/grpc-js';
import type { z } from 'zod';
import { setupServiceAuth, type AuthConfigInput, type ServiceAuth } from '@aimass/auth';
import { createPersonalFeaturizer } from '@aimass/ml';
import {
  Pseudonymizer,
  TenantQuotas,
  createGrpcServer,
  grpcConfigSchema,
  limitsFromConfig,
  pseudonymConfigSchema,
  quotaInterceptor,
  quotasConfigSchema,
  type GrpcServer,
  type Logger,
  type QuotasConfigInput,
} from '@aimass/platform';
import { ConsentCache, PrivacyConsentLookup, type ConsentCacheStats } from '@aimass/consent';
import { AesGcmSealer, PrivacyDataKeySource, type DataKeySource, type PrivacyDataKeySourceStats } from '@aimass/crypto';
import { FEEDBACK_STREAM, plaintextSealer, startErasureParticipant, type ErasureParticipant, type EventBus, type PayloadSealer } from '@aimass/events';
import { SERVICE_NAMES, loadDescriptorSet, v1 } from '@aimass/proto';
import type { DocumentStore } from '@aimass/storage';
import { ConsentCheckingPersonalModel, ConsentCheckingRecorder, ConsentCheckingRecords } from './adapters/consent.js';
import { EventFeedbackRecorder, FUSION_PRODUCER } from './adapters/event-feedback-recorder.js';
import { FeedbackKeys } from './adapters/feedback-keys.js';
import { DirectTrainingRecorder, type FeedbackRecorder } from './adapters/feedback-recorder.js';
import { GeneralModelClient } from './adapters/general-model-client.js';
import { PersonalModelClient } from './adapters/personal-model-client.js';
import { PredictionRecords, type PredictionRecordStats, type PredictionRecordStore } from './adapters/prediction-records.js';
import { KnownTenants } from './adapters/records.js';
import { TenantRegistry } from './adapters/tenant-registry.js';
import { TenantSettingsView } from './adapters/tenant-settings.js';
import { policyOverridesFromSettings, quotaFromSettings } from './domain/tenants.js';
import { TENANT_EVENTS_STREAM } from './adapters/tenant-events.js';
import { fusionConfigSchema, type FusionConfig, type FusionConfigInput } from './config.js';
import { CircuitBreaker } from './domain/circuit-breaker.js';
import type { CoalescerStats } from './domain/coalescer.js';
import { NoModelCache, type NoModelCacheStats } from './domain/no-model-cache.js';
import { resolvePolicy, type FusionPolicy } from './domain/strategy.js';
import { createInferenceService } from './grpc/inference-service.js';
import { createCredentialService, createTenantAdminService } from './grpc/tenant-admin-service.js';
import { FeedbackService } from './runtime/feedback.js';
import { ModelUpdateListener, type ModelUpdateStats } from './runtime/model-updates.js';
import { Predictor } from './runtime/predictor.js';
import { TenantDeletions } from './runtime/tenant-deletion.js';

/** The gRPC services this process serves (for health checks). */
export const FUSION_GRPC_SERVICES: readonly string[] = [SERVICE_NAMES.predict, SERVICE_NAMES.tenantAdmin, SERVICE_NAMES.credentials];

const HOUR_MS = 3_600_000;

export interface FusionDependencies {
  /** Where prediction records and Feedback idempotency keys are kept (the caller opens and closes it). */
  readonly store: DocumentStore;
  /**
   * The event bus (the caller opens and closes it). With one, Feedback publishes a durable
   * FeedbackRecorded event that the updater consumes (`EventFeedbackRecorder`), and fusion ensures
   * the feedback stream at start. Without one there is no updater to consume
   * feedback, so Feedback trains the personal model directly (`DirectTrainingRecorder`).
   * Consent enforcement (`fusion.privacy.address`) needs it: its cache is fed by ConsentChanged.
   * With one, fusion also takes part in erasures (ErasureRequested → the user's records deleted →
   * ErasureCompleted for `fusion`).
   */
  readonly bus?: EventBus | undefined;
  /**
   * Users' data keys. By default, with `fusion.privacy.address` set, a `PrivacyDataKeySource` at
   * that address (closed with fusion); without it, none. Tests inject a `DataKeyRing`. Told to
   * `forget` a user on ErasureRequested; asked ahead for the keys of Predict's users.
   */
  readonly dataKeys?: FusionDataKeys | undefined;
  /**
   * Seals the personal data of FeedbackRecorded events and prediction records. By default an
   * `AesGcmSealer` over `dataKeys` (`privacy.dataKeys.allowPlaintext` for records stored before
   * keys were configured), or `plaintextSealer()` (algorithm NONE) without keys: development and
   * tests only.
   */
  readonly sealer?: PayloadSealer | undefined;
  /** Where validated feedback goes; overrides the choice above (tests, benchmarks). */
  readonly recorder?: FeedbackRecorder | undefined;
  /** grpc-js interceptors for the downstream clients (metrics, call counting in tests and benchmarks). */
  readonly interceptors?: { readonly generalModel?: readonly Interceptor[]; readonly personalModel?: readonly Interceptor[] } | undefined;
}

/** A source of users' data keys that can also drop a user from memory (erasure). */
export type FusionDataKeys = DataKeySource & { forget(tenant: string, userPseudonym: string): void };

/** Counters of the request coalescers (undefined: coalescing is off). */
export interface CoalescingStats {
  readonly generalModel: CoalescerStats | undefined;
  readonly personalModel: CoalescerStats | undefined;
  /** Prediction record writes (calls = transactions). */
  readonly records: CoalescerStats | undefined;
}

/** The known-no-model cache (see the README, "Users without a personal model"). */
export interface NoModelStats {
  readonly cache: NoModelCacheStats;
  /** PersonalModelUpdated events seen (undefined without an event bus). */
  readonly events: ModelUpdateStats | undefined;
  /** How long a NO_MODEL answer is trusted. */
  readonly ttlMs: number;
}

/** TTL of the known-no-model cache when the configuration sets none. */
export const NO_MODEL_TTL_WITH_BUS_MS = 60_000;
export const NO_MODEL_TTL_WITHOUT_BUS_MS = 2_000;
/**
 * After a user's model is announced, NO_MODEL answers for that user are not cached for this long:
 * personal-model replicas apply the same announcement a little later than fusion may (its README:
 * typically milliseconds), and until then can still answer from their own "no model" entry.
 */
const NO_MODEL_HOLD_MS = 5_000;

/** The name fusion confirms erasures under (privacy's `erasure.services`). */
export const FUSION_ERASURE_SERVICE = FUSION_PRODUCER;

export interface PruneResult {
  readonly predictions: number;
  readonly feedbackKeys: number;
}

export interface RunningFusion {
  /** host:port of the gRPC server. */
  readonly address: string;
  readonly port: number;
  readonly server: GrpcServer;
  /** Authentication (the `auth` section): its authenticator is undefined in mode none. */
  readonly auth: ServiceAuth;
  /** Tenants and API keys. */
  readonly tenantRegistry: TenantRegistry;
  /** Tenants' stored settings as this replica applies them (re-read every `tenantSettingsRefreshMs`; `refresh()` at once). */
  readonly tenantSettings: TenantSettingsView;
  /** Per-tenant quotas of the public API (the `quotas` section). */
  readonly quotas: TenantQuotas;
  /** The resolved policy of a tenant (defaults with its overrides). */
  policyOf(tenant: string): FusionPolicy;
  /** Downstream calls, members and items the coalescers sent so far. */
  coalescingStats(): CoalescingStats;
  /** Counters of the known-no-model cache (undefined when it is off). */
  noModelStats(): NoModelStats | undefined;
  /** Counters of the consent cache (undefined when consent is not enforced: no `fusion.privacy.address`). */
  consentStats(): ConsentCacheStats | undefined;
  /** Prediction records stored and not stored (no training consent, key not had in time), and found unreadable. */
  recordStats(): PredictionRecordStats;
  /** Counters of the privacy service's key client (undefined when fusion did not create one). */
  dataKeyStats(): PrivacyDataKeySourceStats | undefined;
  /** This replica's member of the erasure consumer group (undefined without an event bus). */
  readonly erasure: ErasureParticipant | undefined;
  /** Tenant deletions: DeleteTenant's work, the receipt's confirmations (with a bus) and the sweep that asks again. */
  readonly tenantDeletions: TenantDeletions;
  /** Deletes expired prediction records and idempotency keys of every tenant seen (also run periodically). */
  prune(now?: Date): Promise<PruneResult>;
  /** Stops the prune timer and closes the downstream clients (after the server has drained). */
  close(): Promise<void>;
  /** Drains the server, then closes. */
  stop(): Promise<void>;
}

export interface FusionStartConfig {
  grpc: z.input<typeof grpcConfigSchema>;
  pseudonym: z.input<typeof pseudonymConfigSchema>;
  fusion: FusionConfigInput;
  /** Authentication of incoming calls and the service token of outgoing ones; mode none when absent. */
  auth?: AuthConfigInput | undefined;
  /** Per-tenant rate and concurrency of incoming calls; unlimited when absent. */
  quotas?: QuotasConfigInput | undefined;
}

/**
 * A tenant's policy: the configured defaults, its configured entry, then what its stored settings
 * set (the tenant admin API), each laid over the one before. Cached until the registry changes.
 */
function policyResolver(config: FusionConfig, settings: TenantSettingsView): (tenant: string) => FusionPolicy {
  let cache = new Map<string, FusionPolicy>();
  let generation = settings.generation;
  return (tenant) => {
    if (generation !== settings.generation) {
      cache = new Map();
      generation = settings.generation;
    }
    let policy = cache.get(tenant);
    if (!policy) {
      const configured = resolvePolicy(config.defaults, config.tenants[tenant]);
      const stored = settings.settingsOf(tenant);
      policy = stored ? resolvePolicy(configured, policyOverridesFromSettings(stored)) : configured;
      cache.set(tenant, policy);
    }
    return policy;
  };
}

/**
 * Starts the fusion service: clients of general-model and personal-model, the record collections,
 * and the gRPC server with aimass.v1.InferenceService. Downstream services need not be up yet:
 * calls fail (general) or fall back (personal) until they are.
 */
export async function startFusion(config: FusionStartConfig, logger: Logger, deps: FusionDependencies): Promise<RunningFusion> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const fusion = fusionConfigSchema.parse(config.fusion);
  const pseudonymizer = Pseudonymizer.fromConfig(pseudonymConfigSchema.parse(config.pseudonym));
  const { store, bus } = deps;
  if (fusion.privacy.address !== undefined && !bus) {
    throw new TypeError('startFusion: fusion.privacy.address is set but there is no event bus: consent enforcement needs the bus that carries ConsentChanged (events.kind nats)');
  }
  // Before serving: an OK Feedback needs a stream to be stored in. (The dead-letter stream is the
  // updater's to declare.)
  if (bus) await bus.ensureStream(FEEDBACK_STREAM);
  // Tenants and API keys live here; the authenticator checks keys against them directly.
  const tenantRegistry = await TenantRegistry.open(store);
  const tenantSettings = new TenantSettingsView({ registry: tenantRegistry, logger, refreshMs: fusion.tenantSettingsRefreshMs });
  await tenantSettings.start();
  const auth = setupServiceAuth({ config: config.auth, service: 'fusion', logger, credentials: tenantRegistry });
  if (bus) await bus.ensureStream(TENANT_EVENTS_STREAM);

  const coalescing = fusion.coalescing.enabled ? fusion.coalescing : undefined;
  // Personal data is sealed with the user's key whenever the privacy service is configured.
  const ownKeys =
    deps.dataKeys === undefined && fusion.privacy.address !== undefined
      ? new PrivacyDataKeySource({
          address: fusion.privacy.address,
          callTimeoutMs: fusion.privacy.dataKeys.callTimeoutMs,
          cacheTtlMs: fusion.privacy.dataKeys.cacheTtlMs,
          cacheMaxEntries: fusion.privacy.dataKeys.cacheMaxEntries,
          client: { interceptors: auth.clientInterceptors },
        })
      : undefined;
  const dataKeys = deps.dataKeys ?? ownKeys;
  const sealer = deps.sealer ?? (dataKeys ? new AesGcmSealer({ keys: dataKeys, allowPlaintext: fusion.privacy.dataKeys.allowPlaintext }) : plaintextSealer());
  const dataKeyConfig = fusion.privacy.dataKeys;
  const records = await PredictionRecords.open(store, {
    retentionMs: fusion.predictions.retentionHours * HOUR_MS,
    coalescing,
    sealer,
    keys: dataKeys,
    late: dataKeyConfig.lateRecordWaitMs > 0 ? { maxWaitMs: dataKeyConfig.lateRecordWaitMs, maxRecords: dataKeyConfig.lateRecordsMax } : undefined,
  });
  const keys = await FeedbackKeys.open(store, { retentionMs: fusion.predictions.idempotencyRetentionHours * HOUR_MS });
  const tenants = await KnownTenants.open(store);
  const noModelTtlMs = fusion.personalModel.noModelCacheTtlMs ?? (bus ? NO_MODEL_TTL_WITH_BUS_MS : NO_MODEL_TTL_WITHOUT_BUS_MS);
  const noModelCache =
    fusion.personalModel.noModelCacheMaxEntries > 0
      ? new NoModelCache({
          maxEntries: fusion.personalModel.noModelCacheMaxEntries,
          ttlMs: noModelTtlMs,
          // Also covers a Score call in flight (at most maxPersonalMs) when the announcement arrives.
          holdMs: Math.max(NO_MODEL_HOLD_MS, fusion.budget.maxPersonalMs + 1_000),
        })
      : undefined;
  // Listening before serving, so no model written after the first Predict can go unannounced here.
  const modelUpdates = bus && noModelCache ? await ModelUpdateListener.start(bus, noModelCache, logger) : undefined;
  const general = new GeneralModelClient(fusion.generalModel.address, {
    defaultDeadlineMs: fusion.budget.defaultDeadlineMs,
    coalescing,
    interceptors: [...auth.clientInterceptors, ...(deps.interceptors?.generalModel ?? [])],
  });
  const personal = new PersonalModelClient(fusion.personalModel.address, {
    defaultDeadlineMs: fusion.budget.defaultDeadlineMs,
    coalescing,
    interceptors: [...auth.clientInterceptors, ...(deps.interceptors?.personalModel ?? [])],
    breaker: new CircuitBreaker({ threshold: fusion.personalModel.circuitFailureThreshold, openMs: fusion.personalModel.circuitOpenMs }),
  });
  // Consent is enforced by wrapping the personal model and the feedback recorder, not in the handlers.
  let consent: { cache: ConsentCache; lookup: PrivacyConsentLookup } | undefined;
  if (fusion.privacy.address !== undefined && bus) {
    const lookup = new PrivacyConsentLookup(fusion.privacy.address, { callTimeoutMs: fusion.privacy.lookupTimeoutMs, interceptors: auth.clientInterceptors });
    try {
      // Subscribed before serving, so no change made after the first call can go unseen.
      const cache = await ConsentCache.start({
        bus,
        lookup: lookup.lookup,
        ...fusion.privacy.cache,
        onError: (err: unknown) => logger.warn({ err }, 'consent cache: a lookup failed or an event could not be read; refusing what it cannot verify'),
      });
      consent = { cache, lookup };
    } catch (err) {
      lookup.close();
      ownKeys?.close();
      general.close();
      personal.close();
      await modelUpdates?.close().catch(() => undefined);
      throw err;
    }
  }
  let erasure: ErasureParticipant | undefined;
  try {
    erasure = bus
      ? await startErasureParticipant({
          bus,
          service: FUSION_ERASURE_SERVICE,
          consumer: fusion.erasure,
          logger,
          erase: async ({ tenant, userPseudonym }) => {
            // First what memory holds: the user's data key (privacy destroyed it before asking, so
            // from here on nothing of theirs opens or is sealed anew) and their consent (the next
            // check reads the erasure's outcome from privacy).
            dataKeys?.forget(tenant, userPseudonym);
            consent?.cache.forget(tenant, userPseudonym);
            // Records and keys are owned by the pseudonym (`user`), expired ones included; a
            // redelivery or a new round finds none and confirms with 0.
            const itemsDeleted = (await records.deleteUser(tenant, userPseudonym)) + (await keys.deleteUser(tenant, userPseudonym));
            noModelCache?.forget(tenant, userPseudonym);
            return { itemsDeleted };
          },
        })
      : undefined;
  } catch (err) {
    consent?.lookup.close();
    ownKeys?.close();
    general.close();
    personal.close();
    await modelUpdates?.close().catch(() => undefined);
    await consent?.cache.close().catch(() => undefined);
    throw err;
  }
  const featurizer = createPersonalFeaturizer();
  const policyOf = policyResolver(fusion, tenantSettings);
  // No record without training consent: Feedback, the only reader, needs it anyway.
  const recordStore: PredictionRecordStore = consent ? new ConsentCheckingRecords(records, consent.cache) : records;
  const shared = {
    general,
    records: recordStore,
    tenants,
    featurizer,
    pseudonymizer,
    budget: fusion.budget,
    limits: fusion.limits,
    // A tenant's stored general model (the tenant admin API) wins over the configured one.
    generalModelOf: (tenant: string) => tenantSettings.settingsOf(tenant)?.generalModelName || fusion.generalModel.model,
    defaultDeadlineMs: fusion.budget.defaultDeadlineMs,
  };
  const predictor = new Predictor({
    ...shared,
    personal: consent ? new ConsentCheckingPersonalModel(personal, consent.cache) : personal,
    policyOf,
    noModelCache,
    recordWaitMs: fusion.privacy.dataKeys.recordWaitMs,
  });
  const recorder = deps.recorder ?? (bus ? new EventFeedbackRecorder(bus, { sealer, logger }) : new DirectTrainingRecorder(personal));
  const feedback = new FeedbackService({
    ...shared,
    keys,
    recorder: consent ? new ConsentCheckingRecorder(recorder, consent.cache) : recorder,
    retentionHours: fusion.predictions.retentionHours,
    noModelCache,
  });

  const closeClients = () => {
    general.close();
    personal.close();
    consent?.lookup.close();
    ownKeys?.close();
  };
  const closeListener = async () => {
    tenantSettings.stop();
    await tenantDeletions.close().catch((err: unknown) => logger.warn({ err }, 'closing the tenant deletion consumer failed'));
    // First: waits for an erasure in progress, which uses the caches closed below.
    await erasure?.close().catch((err: unknown) => logger.warn({ err }, 'closing the erasure consumer failed'));
    await modelUpdates?.close().catch((err: unknown) => logger.warn({ err }, 'closing the model update subscription failed'));
    await consent?.cache.close().catch((err: unknown) => logger.warn({ err }, 'closing the consent subscription failed'));
  };
  // A tenant over its quota is refused before any work (consent, downstream calls) is done for it.
  // A tenant's stored quota (the tenant admin API) wins over the configured one.
  const quotasConfig = quotasConfigSchema.parse(config.quotas ?? {});
  const configuredLimits = limitsFromConfig(quotasConfig);
  const quotas = new TenantQuotas({
    maxTrackedTenants: quotasConfig.maxTrackedTenants,
    limits: (tenant) => {
      const stored = tenantSettings.settingsOf(tenant);
      return (stored && quotaFromSettings(stored)) ?? configuredLimits(tenant);
    },
  });
  // Other services erase their share on TenantDeleted; fusion's own records go in `run`.
  const tenantDeletions = new TenantDeletions({
    registry: tenantRegistry,
    bus,
    logger,
    services: fusion.tenantDeletion.services,
    retryIntervalMs: fusion.tenantDeletion.retryIntervalMs,
    sweepIntervalMs: fusion.tenantDeletion.sweepIntervalMs,
    consumer: fusion.tenantDeletion.consumer,
    deleteOwn: async (tenant) => {
      const deleted = (await records.deleteTenant(tenant)) + (await keys.deleteTenant(tenant)) + (await tenantRegistry.deleteUsage(tenant));
      logger.info({ tenant, itemsDeleted: deleted }, 'tenant records deleted');
      return deleted;
    },
  });
  let server: GrpcServer;
  let bound;
  try {
    await tenantDeletions.start();
    server = createGrpcServer({
      config: grpc,
      logger,
      descriptorSet: loadDescriptorSet(),
      // Authentication first: it decides the call's tenant, which the quotas count against.
      interceptors: [...auth.serverInterceptors, quotaInterceptor(quotas, { logger, holdRefusalsMs: quotasConfig.holdRefusalsMs, maxHeldPerTenant: quotasConfig.maxHeldPerTenant })],
      services: [
        {
          definition: v1.InferenceServiceService,
          implementation: createInferenceService({
            predictor,
            feedback,
            logger,
            maxBatchItems: fusion.limits.maxBatchItems,
            maxStreamInFlight: fusion.limits.maxStreamInFlight,
          }),
        },
        {
          definition: v1.TenantAdminServiceService,
          implementation: createTenantAdminService({
            registry: tenantRegistry,
            authenticator: auth.authenticator,
            purgeTenant: (tenant, reason) => tenantDeletions.run(tenant, reason),
          }),
        },
        { definition: v1.CredentialServiceService, implementation: createCredentialService(tenantRegistry) },
      ],
    });
    bound = await server.start();
  } catch (err) {
    closeClients();
    await closeListener();
    throw err;
  }

  const prune = async (now = new Date()): Promise<PruneResult> => {
    let predictions = 0;
    let feedbackKeys = 0;
    for (const tenant of await tenants.list()) {
      predictions += await records.prune(tenant, now);
      feedbackKeys += await keys.prune(tenant, now);
    }
    return { predictions, feedbackKeys };
  };
  let pruning: Promise<unknown> = Promise.resolve();
  const timer =
    fusion.predictions.pruneIntervalMinutes > 0
      ? setInterval(() => {
          pruning = prune()
            .then((r) => {
              if (r.predictions + r.feedbackKeys > 0) logger.info(r, 'pruned expired records');
            })
            .catch((err: unknown) => logger.warn({ err }, 'prune of expired records failed; retrying at the next interval'));
        }, fusion.predictions.pruneIntervalMinutes * 60_000)
      : undefined;
  timer?.unref();

  logger.info(
    {
      address: bound.address,
      generalModel: fusion.generalModel.address,
      personalModel: fusion.personalModel.address,
      defaultStrategy: fusion.defaults.strategy,
      coalescing: coalescing ? { maxItems: coalescing.maxItems, maxDelayMs: coalescing.maxDelayMs } : false,
      // events: entries dropped by PersonalModelUpdated; ttl: only the TTL bounds a stale entry.
      noModelCache: noModelCache ? { maxEntries: fusion.personalModel.noModelCacheMaxEntries, ttlMs: noModelTtlMs, invalidation: modelUpdates ? 'events' : 'ttl' } : false,
      // off: a deployment without the privacy service, nothing is checked.
      consent: consent ? { privacy: fusion.privacy.address, ttlMs: fusion.privacy.cache.ttlMs } : 'off',
      // Feedback events and prediction records: sealed with users' keys, or algorithm NONE (development only).
      encryption: deps.sealer ? 'custom' : ownKeys ? { keys: fusion.privacy.address, allowPlaintext: fusion.privacy.dataKeys.allowPlaintext } : dataKeys ? 'injected keys' : 'off',
      tenantsConfigured: Object.keys(fusion.tenants).length,
      // events: FeedbackRecorded for the updater; direct: no bus, so no updater, Feedback trains in the call.
      feedback: deps.recorder ? 'custom' : bus ? 'events' : 'direct',
      // Without a bus fusion is asked for no erasure (its records then only expire).
      erasureGroup: erasure?.consumer.durable ?? 'off',
    },
    'fusion serving',
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      if (timer) clearInterval(timer);
      await pruning;
      await closeListener();
      // Before the key client closes: records still waiting for a key get a moment to be written.
      await records.close();
      closeClients();
    })();
    return closing;
  };
  return {
    address: bound.address,
    port: bound.port,
    server,
    auth,
    tenantRegistry,
    tenantSettings,
    quotas,
    policyOf,
    coalescingStats: () => ({ generalModel: general.coalescingStats(), personalModel: personal.coalescingStats(), records: records.coalescingStats() }),
    noModelStats: () => (noModelCache ? { cache: noModelCache.stats(), events: modelUpdates?.stats(), ttlMs: noModelTtlMs } : undefined),
    consentStats: () => consent?.cache.stats(),
    recordStats: () => recordStore.stats(),
    dataKeyStats: () => ownKeys?.stats(),
    erasure,
    tenantDeletions,
    prune,
    close,
    async stop() {
      await server.drain();
      await close();
    },
  };
}
