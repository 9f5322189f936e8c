import type { z } from 'zod';
import { setupServiceAuth, type AuthConfigInput, type ServiceAuth } from '@aimass/auth';
import {
  DataKeyRing,
  StaticTenantKeyProvider,
  TenantKeyError,
  WRAPPED_KEY_COLLECTION,
  documentWrappedKeyStore,
  openConfiguredKeyProvider,
  type DataKeysConfig,
  type DataKeysConfigInput,
  type TenantKeyProvider,
  type WrappedKeyDocument,
} from '@aimass/crypto';
import {
  ALL_ERASURE_COMPLETED,
  CONSENT_STREAM,
  DEAD_LETTER_STREAM,
  ERASURE_STREAM,
  deadLetterSubject,
  startTenantDeletionParticipant,
  type ConsumerHandle,
  type EventBus,
  type TenantDeletionParticipant,
} from '@aimass/events';
import { ConfigError, Pseudonymizer, createGrpcServer, grpcConfigSchema, pseudonymConfigSchema, type GrpcServer, type Logger } from '@aimass/platform';
import { SERVICE_NAMES, loadDescriptorSet, v1 } from '@aimass/proto';
import type { DocumentStore } from '@aimass/storage';
import { ConsentEvents } from './adapters/consent-events.js';
import { ConsentStore } from './adapters/consent-store.js';
import { ErasureEvents } from './adapters/erasure-events.js';
import { ErasureStore } from './adapters/erasure-store.js';
import { TenantTombstones } from '@aimass/storage';
import { PersonalModelExportSource, UpdaterExportSource } from './adapters/export-peers.js';
import { RemoteTenantSettings, TenantConsentDefaults } from './adapters/tenant-consent-defaults.js';
import { DeletedTenantEvents } from './adapters/tenant-guard.js';
import { privacyConfigSchema, privacyDataKeysConfigSchema, type PrivacyConfig, type PrivacyConfigInput } from './config.js';
import type { ConsentDefaults } from './domain/decisions.js';
import { DATA_KEY_SERVICE_NAME, createDataKeyService } from './grpc/data-key-service.js';
import { createPrivacyService } from './grpc/privacy-service.js';
import { ConsentService } from './runtime/consent.js';
import { ErasureService } from './runtime/erasure.js';
import { ExportService } from './runtime/export.js';
import { privacyTenantDeletion } from './runtime/tenant-deletion.js';

/** The gRPC services this process serves (for health checks): the public one and the internal key service. */
export const PRIVACY_GRPC_SERVICES: readonly string[] = [SERVICE_NAMES.privacy, DATA_KEY_SERVICE_NAME];

export interface PrivacyDependencies {
  /** Consent histories, erasure tombstones and users' wrapped data keys (the caller opens and closes it). */
  readonly store: DocumentStore;
  /** Where ConsentChanged and ErasureRequested are published, ErasureCompleted consumed (the caller opens and closes it). */
  readonly bus: EventBus;
  /**
   * Where Export finds personal-model and the updater when `privacy.export.*Address` is not set:
   * asked at each Export (the one-process runner's `addressOf`, whose services start after privacy).
   */
  readonly addressOf?: ((service: 'personal-model' | 'updater' | 'fusion') => string | undefined) | undefined;
}

export interface PrivacyStartConfig {
  grpc: z.input<typeof grpcConfigSchema>;
  pseudonym: z.input<typeof pseudonymConfigSchema>;
  /** Tenant key-encryption keys (required: `kekSource` config or directory). */
  dataKeys?: DataKeysConfigInput | undefined;
  privacy?: PrivacyConfigInput | undefined;
  /** Authentication: in mode api-keys, consent-scoped API keys (checked through fusion's CredentialService) or platform service tokens. */
  auth?: AuthConfigInput | undefined;
}

export interface RunningPrivacy {
  /** host:port of the gRPC server (aimass.v1.PrivacyService). */
  readonly address: string;
  readonly port: number;
  readonly server: GrpcServer;
  readonly config: PrivacyConfig;
  /** Users' data keys (the ring GetDataKey serves from and erasure destroys in). */
  readonly keys: DataKeyRing;
  /** The consent defaults in force: the configured ones with the tenants' stored ones (re-read every `tenantSettings.refreshMs`, or now with `refresh`). */
  readonly consentDefaults: TenantConsentDefaults;
  /** Announces changes recorded but not announced yet (also at start and every `outbox.sweepIntervalMs`); returns the events published. */
  sweep(options?: { graceMs?: number }): Promise<number>;
  /**
   * Looks at the open erasures now (also at start and every `erasure.sweepIntervalMs`): publishes
   * requests a failed Erase left unpublished and asks services that have not confirmed again.
   * Returns the requests published.
   */
  sweepErasures(): Promise<number>;
  /** The consumer of ErasureCompleted (this replica's member of the group). */
  readonly erasureConsumer: ConsumerHandle;
  /** This replica's member of the tenant deletion consumer group. */
  readonly tenantDeletion: TenantDeletionParticipant;
  /** Stops the sweep (after the server has drained); the store and the bus stay open. */
  close(): Promise<void>;
  /** Drains the server, then closes. */
  stop(): Promise<void>;
}

/** The name privacy confirms tenant deletions under (fusion's `tenantDeletion.services`). */
export const PRIVACY_TENANT_DELETION_SERVICE = 'privacy';

export function consentDefaults(cfg: PrivacyConfig): ConsentDefaults {
  return { base: cfg.consent.defaults, tenants: cfg.consent.tenants };
}

/** The configured defaults, with the tenants' stored ones when fusion's registry can be found. */
function tenantConsentDefaults(cfg: PrivacyConfig, auth: ServiceAuth, deps: PrivacyDependencies, logger: Logger): TenantConsentDefaults {
  const lookup = deps.addressOf;
  // The one-process mode (`addressOf`) before `auth.credentialService.address`, which the runner
  // also sets: fusion starts after privacy (or is not part of the run), and until it runs there is
  // no registry whose defaults could differ from the configuration.
  const fixed = cfg.tenantSettings.address ?? (lookup ? undefined : auth.config.credentialService.address);
  const address = fixed !== undefined ? () => fixed : lookup ? () => lookup('fusion') : undefined;
  if (!address) {
    logger.warn(
      { consentDefaults: 'configuration only' },
      "tenants' stored consent defaults are not applied, only privacy.consent's: set AIMASS_PRIVACY__TENANT_SETTINGS__ADDRESS (fusion's host:port) to apply them",
    );
  }
  return new TenantConsentDefaults({
    configured: consentDefaults(cfg),
    source: address ? new RemoteTenantSettings({ address, interceptors: auth.clientInterceptors, callTimeoutMs: cfg.tenantSettings.callTimeoutMs }) : undefined,
    refreshMs: cfg.tenantSettings.refreshMs,
    logger,
  });
}

/** The `dataKeys` section checked as privacy needs it; a ConfigError naming the keys and variables otherwise. */
function dataKeysConfig(input: DataKeysConfigInput | undefined): DataKeysConfig {
  const parsed = privacyDataKeysConfigSchema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  throw new ConfigError(parsed.error.issues.map((i) => ({ path: ['dataKeys', ...i.path.map(String)].join('.'), message: i.message })));
}

/** The tenant KEKs, read and checked now; an unreadable directory or a bad key stops the start as a configuration error. */
async function keyProvider(cfg: DataKeysConfig): Promise<TenantKeyProvider> {
  try {
    const provider = await openConfiguredKeyProvider(cfg);
    if (provider) return provider;
  } catch (err) {
    if (err instanceof TenantKeyError) {
      const path = cfg.kekSource === 'directory' ? 'dataKeys.kekDirectory' : 'dataKeys.kekSecret';
      throw new ConfigError([{ path, message: err.message }]);
    }
    throw err;
  }
  // The schema refuses kekSource none; kept for a provider that could answer nothing.
  throw new ConfigError([{ path: 'dataKeys.kekSource', message: 'no key-encryption keys configured' }]);
}

/**
 * Starts the privacy service: its collections, the consent and erasure streams, the consumer of
 * ErasureCompleted, users' data keys (a DataKeyRing on this store, wrapped by the tenant KEKs), the
 * gRPC server with aimass.v1.PrivacyService (consent, erasure, export) and the internal
 * aimass.v1.DataKeyService, and the sweeps that announce consent changes and erasure requests a
 * failed call left unannounced (the erasure sweep also destroys keys a crash left and asks
 * services that have not confirmed again). Rejects with a ConfigError without tenant KEKs.
 */
export async function startPrivacy(config: PrivacyStartConfig, logger: Logger, deps: PrivacyDependencies): Promise<RunningPrivacy> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const cfg = privacyConfigSchema.parse(config.privacy ?? {});
  const keysCfg = dataKeysConfig(config.dataKeys);
  const pseudonymizer = Pseudonymizer.fromConfig(pseudonymConfigSchema.parse(config.pseudonym));
  const kek = await keyProvider(keysCfg);
  const auth = setupServiceAuth({ config: config.auth, service: 'privacy', logger });

  const store = await ConsentStore.open(deps.store);
  const erasureStore = await ErasureStore.open(deps.store);
  // Deleted tenants: no key, no consent, no erasure of theirs from then on (runtime/tenant-deletion.ts).
  const tenantTombstones = await TenantTombstones.open(deps.store);
  const deletedTenantEvents = new DeletedTenantEvents(tenantTombstones, deps.bus, logger);
  const erasedOrDeleted = async (tenant: string, pseudonym: string) => (await tenantTombstones.deleted(tenant)) || (await erasureStore.isErased(tenant, pseudonym));
  const wrappedKeys = await deps.store.collection<WrappedKeyDocument>(WRAPPED_KEY_COLLECTION);
  const keys = new DataKeyRing({
    kek,
    store: documentWrappedKeyStore(wrappedKeys),
    cacheMaxEntries: keysCfg.cacheMaxEntries,
    cacheTtlMs: keysCfg.cacheTtlMs,
    // Asked before a key is stored and again after: an erasure racing a first GetDataKey leaves no key.
    mayCreate: async (tenant, pseudonym) => !(await erasedOrDeleted(tenant, pseudonym)),
  });
  for (const stream of [CONSENT_STREAM, ERASURE_STREAM, DEAD_LETTER_STREAM]) await deps.bus.ensureStream(stream);
  const defaults = tenantConsentDefaults(cfg, auth, deps, logger);
  await defaults.start();
  const consent = new ConsentService({
    store,
    events: new ConsentEvents(deps.bus, logger, deletedTenantEvents),
    defaults: () => defaults.current(),
    maxAppendAttempts: cfg.consent.maxAppendAttempts,
    logger,
    erasure: { isErased: erasedOrDeleted, isTenantDeleted: (tenant) => tenantTombstones.deleted(tenant), absentOp: (tenant, pseudonym) => erasureStore.absentOp(tenant, pseudonym) },
  });
  const erasure = new ErasureService({
    store: erasureStore,
    consent: store,
    events: new ErasureEvents(deps.bus, logger, deletedTenantEvents),
    keys,
    services: cfg.erasure.services,
    retryIntervalMs: cfg.erasure.retryIntervalMs,
    graceMs: cfg.erasure.graceMs,
    logger,
  });
  // Before serving: confirmations of erasures an earlier run requested are recorded from the start.
  const consumerCfg = cfg.erasure.consumer;
  const erasureConsumer = await deps.bus.consume(
    {
      durable: consumerCfg.durable,
      stream: ERASURE_STREAM.name,
      filterSubject: ALL_ERASURE_COMPLETED,
      maxDeliver: consumerCfg.maxDeliver,
      backoffMs: consumerCfg.backoffMs,
      ackWaitMs: consumerCfg.ackWaitMs,
      leaseTtlMs: consumerCfg.leaseTtlMs,
      deadLetterSubject: deadLetterSubject(consumerCfg.durable),
      onError: (err, event) => logger.warn({ err, subject: event?.subject, sequence: event?.sequence }, 'ErasureCompleted not recorded; it is redelivered (privacy asks the service again at its retry interval if it is dead-lettered)'),
    },
    erasure.handleCompleted,
  );

  const personalModel = new PersonalModelExportSource(
    {
      service: 'personal-model',
      setting: 'privacy.export.personalModelAddress',
      variable: 'AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS',
      resolve: () => cfg.export.personalModelAddress ?? deps.addressOf?.('personal-model'),
    },
    { maxPages: cfg.export.maxModelPages, interceptors: auth.clientInterceptors },
  );
  const updater = new UpdaterExportSource({
    service: 'updater',
    setting: 'privacy.export.updaterAddress',
    variable: 'AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS',
    resolve: () => cfg.export.updaterAddress ?? deps.addressOf?.('updater'),
  }, { interceptors: auth.clientInterceptors });
  const exporter = new ExportService({ consent, erasure: erasureStore, personalModel, updater });

  const server = createGrpcServer({
    config: grpc,
    logger,
    descriptorSet: loadDescriptorSet(),
    interceptors: auth.serverInterceptors,
    services: [
      {
        definition: v1.PrivacyServiceService,
        implementation: createPrivacyService({ consent, erasure, exporter, pseudonymizer, limits: cfg.limits, history: cfg.history }),
      },
      {
        definition: v1.DataKeyServiceService,
        implementation: createDataKeyService({ ring: keys, isErased: erasedOrDeleted, keyCacheSeconds: cfg.keyCacheSeconds }),
      },
    ],
  });
  let bound;
  let tenantDeletion: TenantDeletionParticipant | undefined;
  try {
    tenantDeletion = await startTenantDeletionParticipant({
      bus: deps.bus,
      service: PRIVACY_TENANT_DELETION_SERVICE,
      consumer: cfg.tenantDeletion,
      logger,
      deleteTenant: privacyTenantDeletion({ tombstones: tenantTombstones, consent: store, erasure: erasureStore, wrappedKeys, forgetKeys: () => keys.forgetAll(), bus: deps.bus }),
    });
    bound = await server.start();
  } catch (err) {
    await tenantDeletion?.close().catch(() => undefined);
    await erasureConsumer.close();
    personalModel.close();
    updater.close();
    defaults.close();
    auth.close();
    throw err;
  }
  const runningTenantDeletion = tenantDeletion;
  for (const name of PRIVACY_GRPC_SERVICES) server.setServingStatus(name, 'SERVING');
  // Consent reads answer UNAVAILABLE until the tenants' stored defaults were read once: until then
  // PrivacyService says so in its health too (DataKeyService and the server as a whole do not
  // depend on them).
  if (!defaults.loaded) {
    server.setServingStatus(SERVICE_NAMES.privacy, 'NOT_SERVING');
    void defaults.whenLoaded().then(() => {
      if (!closing) server.setServingStatus(SERVICE_NAMES.privacy, 'SERVING');
    });
  }

  // Stops a sweep waiting on an unreachable bus when the service closes.
  const stopping = new AbortController();
  const sweep = async (options: { graceMs?: number } = {}): Promise<number> => {
    const published = await consent.sweep(options.graceMs ?? cfg.outbox.graceMs, { signal: stopping.signal });
    if (published > 0) logger.info({ published }, 'announced consent changes a failed call had left unannounced');
    return published;
  };
  // One background sweep at a time (a sweep waiting on the bus must not pile up behind the timer);
  // a failed one is logged and tried again at the next interval.
  let sweeping: Promise<void> | undefined;
  const track = (graceMs?: number) => {
    sweeping ??= sweep(graceMs === undefined ? {} : { graceMs })
      .then(
        () => undefined,
        (err: unknown) => {
          if (!stopping.signal.aborted) logger.warn({ err }, 'consent outbox sweep failed; retrying at the next interval');
        },
      )
      .finally(() => {
        sweeping = undefined;
      });
  };
  track(0);
  const timer = cfg.outbox.sweepIntervalMs > 0 ? setInterval(() => track(), cfg.outbox.sweepIntervalMs) : undefined;
  timer?.unref();

  const sweepErasures = () => erasure.sweep({ signal: stopping.signal });
  // Likewise one erasure sweep at a time, failures logged and retried at the next interval.
  let erasureSweeping: Promise<void> | undefined;
  const trackErasures = () => {
    erasureSweeping ??= sweepErasures()
      .then(
        (published) => {
          if (published > 0) logger.info({ published }, 'erasure requests published by the sweep');
        },
        (err: unknown) => {
          if (!stopping.signal.aborted) logger.warn({ err }, 'erasure sweep failed; retrying at the next interval');
        },
      )
      .finally(() => {
        erasureSweeping = undefined;
      });
  };
  trackErasures();
  const erasureTimer = cfg.erasure.sweepIntervalMs > 0 ? setInterval(trackErasures, cfg.erasure.sweepIntervalMs) : undefined;
  erasureTimer?.unref();

  logger.info(
    {
      address: bound.address,
      store: deps.store.kind,
      defaults: cfg.consent.defaults,
      tenantsWithOwnDefaults: Object.keys(cfg.consent.tenants).length,
      storedDefaultsFrom: cfg.tenantSettings.address ?? auth.config.credentialService.address ?? (deps.addressOf ? "the run's fusion" : 'nowhere'),
      kekSource: keysCfg.kekSource,
      // Tenants and versions only, never key material.
      keks: kek instanceof StaticTenantKeyProvider ? kek.inventory() : undefined,
      keyCacheSeconds: cfg.keyCacheSeconds,
      export: { personalModel: cfg.export.personalModelAddress ?? (deps.addressOf ? 'resolved at each call' : 'not configured'), updater: cfg.export.updaterAddress ?? (deps.addressOf ? 'resolved at each call' : 'not configured') },
    },
    'privacy serving',
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      if (timer) clearInterval(timer);
      if (erasureTimer) clearInterval(erasureTimer);
      stopping.abort();
      await sweeping;
      await erasureSweeping;
      await erasureConsumer.close();
      await runningTenantDeletion.close();
      personalModel.close();
      updater.close();
      defaults.close();
      auth.close();
      keys.forgetAll();
    })();
    return closing;
  };

  return {
    address: bound.address,
    port: bound.port,
    server,
    config: cfg,
    keys,
    consentDefaults: defaults,
    sweep,
    sweepErasures,
    erasureConsumer,
    tenantDeletion: runningTenantDeletion,
    close,
    async stop() {
      await server.drain();
      await close();
    },
  };
}
