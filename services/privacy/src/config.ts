import { authConfigSchema } from '@aimass/auth';
import { dataKeysConfigSchema } from '@aimass/crypto';
import { ERASURE_SERVICE_PATTERN, erasureConsumerConfigSchema, eventsConfigSchema, tenantDeletionConsumerConfigSchema } from '@aimass/events';
import { TENANT_ID_PATTERN, baseConfigShape, pseudonymConfigSchema } from '@aimass/platform';
import { storeConfigSchema } from '@aimass/storage';
import { z } from 'zod';
import { DEFAULT_ERASURE_SERVICES } from './domain/erasure.js';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const nonNegativeInt = (what: string) => {
  const error = `expected ${what} (a whole number >= 0)`;
  return z.number({ error }).int({ error }).min(0, { error });
};

/** A host:port of another service, as grpc-js takes it (`personal-model:50051`, `dns:///updater:50051`). */
const address = (what: string) => z.string({ error: `expected ${what}'s gRPC address (host:port)` }).min(1, { error: `expected ${what}'s gRPC address (host:port)` });

const defaultState = z.enum(['granted', 'denied'], { error: 'expected granted or denied' });

const purposeDefaults = z.strictObject({
  /** Predictions may use the user's personal model. */
  personalization: defaultState.default('denied'),
  /** The user's feedback may be stored and learnt from. */
  training: defaultState.default('denied'),
});

/** A tenant's own defaults: only the purposes it sets differently. */
const tenantDefaults = z.strictObject({ personalization: defaultState.optional(), training: defaultState.optional() });

/** The `privacy` section (env: `AIMASS_PRIVACY__<KEY>`). */
export const privacyConfigSchema = z.strictObject({
  consent: z
    .strictObject({
      /** What a user who never decided is assumed to have decided: not granted until they opt in. */
      defaults: purposeDefaults.prefault({}),
      /**
       * Tenants whose defaults differ, e.g. `{"acme": {"training": "granted"}}`
       * (AIMASS_PRIVACY__CONSENT__TENANTS as JSON); purposes not named keep `defaults`.
       */
      tenants: z
        .record(z.string(), tenantDefaults)
        .superRefine((tenants, ctx) => {
          for (const tenant of Object.keys(tenants)) {
            if (!TENANT_ID_PATTERN.test(tenant)) ctx.addIssue({ code: 'custom', path: [tenant], message: 'expected a tenant id (lower-case letters, digits and dashes) as the key' });
          }
        })
        .default({}),
      /** Appends that lost to a concurrent one for the same user and start again before the call gets ABORTED. */
      maxAppendAttempts: positiveInt('a number of attempts').max(100).default(16),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Bytes of a user id. */
      maxUserIdBytes: positiveInt('a size in bytes').max(1024).default(256),
      /** Bytes of a policy version. */
      maxPolicyVersionBytes: positiveInt('a size in bytes').max(1024).default(128),
      /** Bytes of a decision's source. */
      maxSourceBytes: positiveInt('a size in bytes').max(4096).default(256),
      /** Bytes of an idempotency key. */
      maxKeyBytes: positiveInt('a size in bytes').max(1024).default(256),
      /** Bytes of an erasure's reason. */
      maxReasonBytes: positiveInt('a size in bytes').max(4096).default(256),
      /** How far in the future a decided_at may lie (clocks of callers run a little ahead). */
      maxClockSkewMs: nonNegativeInt('a duration in milliseconds').default(300_000),
    })
    .prefault({}),
  history: z
    .strictObject({
      /** Records per GetConsentHistory page when the request asks for none. */
      defaultPageSize: positiveInt('a number of records').max(1000).default(100),
      /** Most records per page. */
      maxPageSize: positiveInt('a number of records').max(1000).default(1000),
    })
    .prefault({}),
  /** The search for changes recorded but not announced (a call that failed on the bus and was not retried, a crash). */
  outbox: z
    .strictObject({
      /** 0 turns the periodic sweep off (the one at start still runs). */
      sweepIntervalMs: nonNegativeInt('a duration in milliseconds').default(10_000),
      /** Entries younger than this are left to the call that wrote them. */
      graceMs: nonNegativeInt('a duration in milliseconds').default(5_000),
    })
    .prefault({}),
  /** The erasure saga (see the README, "Erasure"). */
  erasure: z
    .strictObject({
      /**
       * The services that must confirm an erasure before its receipt is complete (privacy is always
       * one). fusion is listed although it does not take part yet: its receipts line stays pending
       * until it does, which is the truth about its copies.
       */
      services: z
        .array(z.string().regex(ERASURE_SERVICE_PATTERN, { error: 'expected service names (lower-case letters, digits and dashes)' }))
        .min(1, { error: 'expected at least one service' })
        .default([...DEFAULT_ERASURE_SERVICES]),
      /** A round of ErasureRequested not confirmed by every service is followed by a new one after this. */
      retryIntervalMs: positiveInt('a duration in milliseconds').default(60_000),
      /** How often open erasures are looked at (0: only at start). */
      sweepIntervalMs: nonNegativeInt('a duration in milliseconds').default(10_000),
      /** An erasure whose request could not be published is left this long to the call that wrote it. */
      graceMs: nonNegativeInt('a duration in milliseconds').default(5_000),
      /** The consumer group of ErasureCompleted. */
      consumer: erasureConsumerConfigSchema('privacy-erasure').prefault({}),
    })
    .prefault({}),
  /**
   * The consumer group of TenantDeleted: the tenant's consent and erasure records and every data
   * key of the tenant deleted, then TenantDeletionCompleted (same keys as `erasure.consumer`).
   */
  tenantDeletion: tenantDeletionConsumerConfigSchema('privacy-tenant-deletion').prefault({}),
  /**
   * How long a service that got a data key from GetDataKey may keep it in memory (max_cache_seconds).
   * This bounds how long a key destroyed at an erasure stays usable in a process that did not hear
   * the ErasureRequested (services that hear it drop the key at once).
   */
  keyCacheSeconds: positiveInt('a number of seconds').max(86_400).default(60),
  /** Where Export reads what the other services hold about a user (see the README, "Export"). */
  export: z
    .strictObject({
      /** personal-model (ListVersions); AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS. */
      personalModelAddress: address('personal-model').optional(),
      /** The updater (UpdaterAdminService.ExportFeedback); AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS. */
      updaterAddress: address('the updater').optional(),
      /** ListVersions pages read at most (a guard against a service that never ends its paging). */
      maxModelPages: positiveInt('a number of pages').max(10_000).default(100),
    })
    .prefault({}),
  /** The tenants' stored settings (fusion's tenant registry), of which privacy applies the consent defaults. */
  tenantSettings: z
    .strictObject({
      /**
       * fusion (CredentialService.ListTenantSettings); AIMASS_PRIVACY__TENANT_SETTINGS__ADDRESS.
       * Defaults to `auth.credentialService.address`, which is fusion too. Neither set: only the
       * configured defaults apply (a warning at start says so).
       */
      address: address('fusion').optional(),
      /** How often they are read again: a tenant's changed defaults apply here within this. */
      refreshMs: positiveInt('a time in milliseconds').max(3_600_000).default(5_000),
      callTimeoutMs: positiveInt('a time in milliseconds').max(60_000).default(2_000),
    })
    .prefault({}),
});

export type PrivacyConfig = z.output<typeof privacyConfigSchema>;
/** What `startPrivacy` accepts: any subset, in the text or parsed form. */
export type PrivacyConfigInput = z.input<typeof privacyConfigSchema>;

/** The `store` section of the standalone service: consent histories. */
export const privacyStoreConfigSchema = storeConfigSchema({ path: 'data/privacy.sqlite', database: 'privacy' });

/** Every consent change is announced on the bus: the service cannot run without one. */
export const privacyEventsConfigSchema = eventsConfigSchema.refine((c) => c.kind !== 'none', {
  error: 'the privacy service announces consent changes: set events.kind (AIMASS_EVENTS__KIND) to nats and events.servers (AIMASS_EVENTS__SERVERS)',
  path: ['kind'],
});

/** What a start without tenant key-encryption keys is told (privacy hosts users' data keys and cannot run without). */
export const KEK_REQUIRED_MESSAGE =
  "the privacy service holds users' data keys and needs tenant key-encryption keys: set AIMASS_DATA_KEYS__KEK_SOURCE=config with AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT (a base64 32-byte key, `openssl rand -base64 32`) or AIMASS_DATA_KEYS__KEK_SECRET__TENANTS, or AIMASS_DATA_KEYS__KEK_SOURCE=directory with AIMASS_DATA_KEYS__KEK_DIRECTORY (a mounted secret)";

/**
 * The `dataKeys` section (libs/crypto) as privacy takes it: `kekSource: none` is refused, since
 * privacy is where users' data keys are created, wrapped and destroyed.
 */
export const privacyDataKeysConfigSchema = dataKeysConfigSchema.refine((c) => c.kekSource !== 'none', { error: KEK_REQUIRED_MESSAGE, path: ['kekSource'] });

/** The service's whole configuration: base keys, `pseudonym`, `store`, `events`, `dataKeys` and `privacy`. */
export const serviceConfigSchema = z.strictObject({
  ...baseConfigShape,
  serviceName: baseConfigShape.serviceName.default('privacy'),
  pseudonym: pseudonymConfigSchema,
  store: privacyStoreConfigSchema.prefault({}),
  events: privacyEventsConfigSchema.prefault({}),
  dataKeys: privacyDataKeysConfigSchema.prefault({}),
  privacy: privacyConfigSchema.prefault({}),
  /** Authentication (env `AIMASS_AUTH__<KEY>`): `none` by default for now; production sets `api-keys`. */
  auth: authConfigSchema.prefault({}),
});

export type ServiceConfig = z.output<typeof serviceConfigSchema>;
