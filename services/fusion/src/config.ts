import { baseConfigShape, isValidTenantId, pseudonymConfigSchema, quotasConfigSchema } from '@aimass/platform';
import { DEFAULT_CONSENT_MAX_ENTRIES, DEFAULT_LOOKUP_TIMEOUT_MS, consentCacheConfigSchema } from '@aimass/consent';
import { authConfigSchema } from '@aimass/auth';
import { remoteDataKeysConfigSchema } from '@aimass/crypto';
import { erasureConsumerConfigSchema, eventsConfigSchema } from '@aimass/events';
import type { v1 } from '@aimass/proto';
import { storeConfigSchema } from '@aimass/storage';
import { z } from 'zod';
import { STRATEGY_NAMES, isStrategy, parseStrategyName } from './domain/strategy.js';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const nonNegativeInt = (what: string) => {
  const error = `expected ${what} (a whole number >= 0)`;
  return z.number({ error }).int({ error }).min(0, { error });
};

const address = z.string().regex(/^\S+:\d+$|^[a-z]+:\/\/?\S+$/, { error: 'expected host:port (or a grpc-js target such as dns:///personal-model:50051)' });

const strategyError = `expected a strategy: one of ${STRATEGY_NAMES.join(', ')}`;

/**
 * A strategy by name (`stacking`, `STACKING`, `FUSION_STRATEGY_STACKING`) parsed to the enum, or
 * the enum itself, so a parsed config parses again unchanged.
 */
const strategy = z.union([z.number(), z.string()], { error: strategyError }).transform((value, ctx): v1.FusionStrategy => {
  const parsed = typeof value === 'number' ? (isStrategy(value) ? value : undefined) : parseStrategyName(value);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `unknown strategy ${JSON.stringify(value)}: ${strategyError}` });
    return z.NEVER;
  }
  return parsed;
});

const weight = z.number().min(0, { error: 'expected a weight in [0, 1]' }).max(1, { error: 'expected a weight in [0, 1]' });
const examplesK = z.number({ error: 'expected a number of examples > 0' }).positive({ error: 'expected a number of examples > 0' });
const threshold = z.number().min(0.5, { error: 'expected a probability in [0.5, 1]' }).max(1, { error: 'expected a probability in [0.5, 1]' });

const interpolation = z.strictObject({
  /** Evidence (feedback examples) at which the personal weight reaches half of `maxWeight`. */
  k: examplesK.default(20),
  /** The personal weight λ approaches this as evidence grows (λ = maxWeight · n / (n + k)). */
  maxWeight: weight.default(0.8),
});

const override = z.strictObject({
  /** The personal top probability at or above which the personal answer wins. */
  threshold: threshold.default(0.9),
  /** Feedback examples the personal model must have learned from before it may override. */
  minExamples: nonNegativeInt('a number of examples').default(10),
});

/** The fusion policy: a strategy and its parameters. Tenant entries override it key by key. */
const policy = z.strictObject({
  strategy: strategy.prefault('stacking'),
  interpolation: interpolation.prefault({}),
  override: override.prefault({}),
});

/** A tenant's overrides: every key optional (no defaults here: `defaults` fills the rest). */
const tenantPolicy = z.strictObject({
  strategy: strategy.optional(),
  interpolation: z.strictObject({ k: examplesK.optional(), maxWeight: weight.optional() }).optional(),
  override: z.strictObject({ threshold: threshold.optional(), minExamples: nonNegativeInt('a number of examples').optional() }).optional(),
});

const tenants = z.record(z.string(), tenantPolicy).superRefine((value, ctx) => {
  for (const key of Object.keys(value)) {
    if (!isValidTenantId(key)) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'invalid tenant id: use 1-63 lower-case letters, digits and dashes' });
    }
  }
});

/** The `fusion` section (env: `AIMASS_FUSION__<KEY>`). */
export const fusionConfigSchema = z.strictObject({
  generalModel: z
    .strictObject({
      /** The general-model service (aimass.v1.GeneralModelService). */
      address: address.default('127.0.0.1:50052'),
      /** The general model to ask for; empty: the service's default task model. A request's `options.general_model` overrides it. */
      model: z.string().default(''),
    })
    .prefault({}),
  personalModel: z
    .strictObject({
      /** The personal-model service (aimass.v1.PersonalModelService). */
      address: address.default('127.0.0.1:50053'),
      /**
       * Consecutive failures or timeouts of Score after which the personal stage is skipped
       * (fallback CIRCUIT_OPEN) for `circuitOpenMs`; 0 disables the breaker.
       */
      circuitFailureThreshold: nonNegativeInt('a number of failures').default(5),
      circuitOpenMs: positiveInt('a duration in milliseconds').default(5_000),
      /**
       * Users remembered as having no personal model (Score answered NO_MODEL), so their Predicts
       * skip the personal features and the Score call; least recently used dropped beyond it
       * (about 175 bytes each). 0 turns the cache off: every Predict asks Score.
       */
      noModelCacheMaxEntries: nonNegativeInt('a number of entries').default(100_000),
      /**
       * How long a NO_MODEL answer is trusted. Unset: 60 s with an event bus (a user's first model
       * is announced by PersonalModelUpdated and drops the entry at once; the TTL only covers an
       * event lost without a reconnect), 2 s without one (nothing announces models then, so this
       * is how late a new model can be used).
       */
      noModelCacheTtlMs: positiveInt('a duration in milliseconds').optional(),
    })
    .prefault({}),
  /**
   * The privacy service (issue 6). With `address` set, Predict uses a user's personal model only
   * with their `personalization` consent and Feedback records only with their `training`
   * consent, checked in a local cache fed by ConsentChanged events (which needs the event bus)
   * and read from the privacy service on a miss; and personal data is sealed with the user's
   * data key from that service (`dataKeys`). Without it nothing is checked or encrypted: a
   * deployment without the privacy service (development, tests).
   */
  privacy: z
    .strictObject({
      /** The privacy service (aimass.v1.PrivacyService, DataKeyService); unset: consent is not enforced, nothing is encrypted. */
      address: address.optional(),
      /** Deadline of one GetConsent on a cache miss (a Predict waits at most its personal share, a Feedback its own deadline). */
      lookupTimeoutMs: positiveInt('a duration in milliseconds').default(DEFAULT_LOOKUP_TIMEOUT_MS),
      cache: consentCacheConfigSchema.prefault({}),
      /**
       * Users' data keys, asked of the same privacy service (aimass.v1.DataKeyService): with
       * `address` set, the personal data of FeedbackRecorded events and prediction records is
       * sealed with the user's key (AES-256-GCM), so destroying the key at erasure makes every copy
       * unreadable. Unset address: algorithm NONE (development and tests only).
       */
      dataKeys: remoteDataKeysConfigSchema
        .extend({
          /** As many as the consent cache by default: Predict needs both. */
          cacheMaxEntries: remoteDataKeysConfigSchema.shape.cacheMaxEntries.removeDefault().default(DEFAULT_CONSENT_MAX_ENTRIES),
          /**
           * The longest a Predict waits for what its prediction record needs (the user's training
           * consent on a cache miss, their key) before answering without the record. The wait
           * ends earlier with the call's deadline; the key keeps coming for the next Predict.
           */
          recordWaitMs: positiveInt('a duration in milliseconds').default(250),
          /**
           * A record whose key is still coming after `recordWaitMs` is written when it comes, after
           * the answer (Feedback by its id waits for it), if within this long; 0: left out at once.
           */
          lateRecordWaitMs: nonNegativeInt('a duration in milliseconds').default(30_000),
          /** At most this many such records wait in memory at a time; beyond, they are left out. */
          lateRecordsMax: positiveInt('a count').default(10_000),
          /**
           * Also read prediction records stored unencrypted (before keys were configured); they
           * expire within `predictions.retentionHours`. Off: such a record reads as absent.
           */
          allowPlaintext: z.boolean({ error: 'expected true or false' }).default(false),
        })
        .prefault({}),
    })
    .prefault({}),
  /** The default policy, for tenants without an entry in `tenants`. */
  defaults: policy.prefault({}),
  /**
   * Per-tenant overrides of `defaults` (JSON in env: AIMASS_FUSION__TENANTS='{"acme":{"strategy":"interpolate"}}'),
   * until a tenant admin API owns them.
   */
  tenants: tenants.default({}),
  /** How the request's deadline is shared between the stages. */
  budget: z
    .strictObject({
      /** Below this much time left, the general model is not even called: DEADLINE_EXCEEDED saying how much is needed. */
      minGeneralMs: positiveInt('a duration in milliseconds').default(5),
      /** Kept back from every downstream call for fusion and the answer, so a late model becomes a fallback, not a timeout. */
      reserveMs: nonNegativeInt('a duration in milliseconds').default(3),
      /** Share of the time left after the general model that the personal model may use. */
      personalShare: z.number().gt(0, { error: 'expected a share in (0, 1]' }).max(1, { error: 'expected a share in (0, 1]' }).default(0.8),
      /** Below this, the personal model is not tried (fallback PERSONAL_TIMEOUT). */
      minPersonalMs: positiveInt('a duration in milliseconds').default(2),
      /** Upper bound on the personal stage however long the deadline is. */
      maxPersonalMs: positiveInt('a duration in milliseconds').default(1_000),
      /** Deadline of calls made when the incoming call has none (only with grpc.requireDeadline off). */
      defaultDeadlineMs: positiveInt('a duration in milliseconds').default(5_000),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Items one PredictBatch may carry. */
      maxBatchItems: positiveInt('a number of items').max(1024).default(256),
      /** UTF-8 bytes of one input (text; mail subject + body + headers; raw data). */
      maxInputBytes: positiveInt('a size in bytes').default(256 * 1024),
      /** Bytes of a user id. */
      maxUserIdBytes: positiveInt('a size in bytes').max(1024).default(256),
      /** Bytes of an idempotency key or item id. */
      maxKeyBytes: positiveInt('a size in bytes').max(1024).default(256),
      /** Stream items being predicted at once per PredictStream call; reading pauses beyond it. */
      maxStreamInFlight: positiveInt('a number of items').max(1024).default(16),
    })
    .prefault({}),
  /**
   * Request coalescing towards both models: concurrent predictions of one tenant (asking for the
   * same general model) share one Classify call and one Score call. Every downstream call costs
   * gRPC work in three processes (fusion, the model, back) however few inputs it carries, and the
   * general model batches rows internally anyway, so under load many small calls cost far more than
   * a few large ones. Off: every request makes its own calls (PredictBatch still makes one each).
   */
  coalescing: z
    .strictObject({
      enabled: z.boolean({ error: 'expected true or false' }).default(true),
      /**
       * Items (inputs, Score items) gathered into one downstream call; at most 1024, the default
       * limit of both Classify (general-model) and Score (personal-model `maxScoreItems`). A
       * request with more items than this is sent alone, as without coalescing. Larger calls save
       * little more overhead but make every member wait for the whole call.
       */
      maxItems: positiveInt('a number of items').max(1024, { error: 'expected at most 1024 items (the models\' per-call limit)' }).default(256),
      /**
       * How long the first request waits for others to share its call. 0 (default): only those
       * that arrive in the same event-loop turn — under load that is many, when idle a request
       * waits for nothing.
       */
      maxDelayMs: nonNegativeInt('a duration in milliseconds').max(100, { error: 'expected at most 100 ms (it adds to every request\'s latency)' }).default(0),
      /**
       * Estimated request bytes gathered into one call, kept well under the models' default
       * 4 MiB message limit (`grpc.maxReceiveMessageBytes`); a single larger request goes alone.
       */
      maxRequestBytes: positiveInt('a size in bytes').default(1024 * 1024),
    })
    .prefault({}),
  predictions: z
    .strictObject({
      /** How long a prediction can be referred to by Feedback (its record is kept this long). */
      retentionHours: z.number().positive({ error: 'expected a number of hours > 0' }).default(7 * 24),
      /** How long a Feedback idempotency key is remembered. */
      idempotencyRetentionHours: z.number().positive({ error: 'expected a number of hours > 0' }).default(7 * 24),
      /** How often expired records are deleted; 0 turns the background prune off. */
      pruneIntervalMinutes: z.number().min(0).default(60),
    })
    .prefault({}),
  /**
   * The consumer group of ErasureRequested (with an event bus): the user's prediction records and
   * Feedback idempotency keys are deleted and the user dropped from the caches, then
   * ErasureCompleted confirms it.
   */
  erasure: erasureConsumerConfigSchema('fusion-erasure').prefault({}),
  /**
   * How often the tenant registry is read again for tenants' settings (default strategy and its
   * weights, quota): a change made through another fusion replica applies within this.
   */
  tenantSettingsRefreshMs: positiveInt('a duration in milliseconds').default(5_000),
  /** Tenant deletion (DeleteTenant's receipt; see the README, "Tenants and API keys"). */
  tenantDeletion: z
    .strictObject({
      /** The services that must confirm before a DELETING tenant turns DELETED (fusion always is one). */
      services: z
        .array(z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, { error: 'expected service names (lower-case letters, digits and dashes)' }))
        .min(1, { error: 'expected at least one service' })
        .default(['fusion', 'personal-model', 'updater', 'privacy']),
      /** TenantDeleted is published again after this while a service has not confirmed. */
      retryIntervalMs: positiveInt('a duration in milliseconds').default(60_000),
      /** How often DELETING tenants are looked at (0: never, only DeleteTenant publishes). */
      sweepIntervalMs: nonNegativeInt('a duration in milliseconds').default(10_000),
      /** The consumer group of TenantDeletionCompleted. */
      consumer: erasureConsumerConfigSchema('fusion-tenant-deletions').prefault({}),
    })
    .prefault({}),
});

export type FusionConfig = z.output<typeof fusionConfigSchema>;
/** What `startFusion` accepts: any subset, in the text or parsed form. */
export type FusionConfigInput = z.input<typeof fusionConfigSchema>;
export type FusionPolicyConfig = FusionConfig['defaults'];
export type TenantPolicyConfig = FusionConfig['tenants'][string];

/** The `store` section of the standalone service: where prediction records and feedback keys live. */
export const fusionStoreConfigSchema = storeConfigSchema({ path: '.data/fusion.sqlite', database: 'fusion' });

/** The service's whole configuration: base keys, `pseudonym`, `store`, `events` and `fusion`. */
export const serviceConfigSchema = z.strictObject({
  ...baseConfigShape,
  serviceName: baseConfigShape.serviceName.default('fusion'),
  pseudonym: pseudonymConfigSchema,
  store: fusionStoreConfigSchema.prefault({}),
  /**
   * The event bus (`kind: nats` with `servers`): Feedback then publishes FeedbackRecorded for the
   * updater. `kind: none` (the default): no bus and no updater, so Feedback trains directly.
   */
  events: eventsConfigSchema.prefault({}),
  fusion: fusionConfigSchema.prefault({}),
  /** Authentication (env `AIMASS_AUTH__<KEY>`): `none` by default for now; production sets `api-keys`. */
  auth: authConfigSchema.prefault({}),
  /** Per-tenant request rate and concurrency of the public API (env `AIMASS_QUOTAS__<KEY>`); unlimited by default. */
  quotas: quotasConfigSchema.prefault({}),
}).superRefine((config, ctx) => {
  if (config.fusion.privacy.address !== undefined && config.events.kind === 'none') {
    ctx.addIssue({
      code: 'custom',
      path: ['fusion', 'privacy', 'address'],
      message: 'consent enforcement needs the event bus that carries ConsentChanged: set events.kind to nats (AIMASS_EVENTS__KIND, AIMASS_EVENTS__SERVERS), or unset the address',
    });
  }
});

export type ServiceConfig = z.output<typeof serviceConfigSchema>;
