import { authConfigSchema } from '@aimass/auth';
import { DEFAULT_PERSONAL_FEATURIZER_OPTIONS, DEFAULT_PERSONAL_LEARNER_OPTIONS } from '@aimass/ml';
import { DEFAULT_LOOKUP_TIMEOUT_MS, consentCacheConfigSchema } from '@aimass/consent';
import { remoteDataKeysConfigSchema } from '@aimass/crypto';
import { erasureConsumerConfigSchema, eventsConfigSchema, tenantDeletionConsumerConfigSchema } from '@aimass/events';
import { baseConfigShape } from '@aimass/platform';
import { storeConfigSchema } from '@aimass/storage';
import { z } from 'zod';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};
const positive = (what: string) => z.number({ error: `expected ${what} (a number > 0)` }).positive({ error: `expected ${what} (a number > 0)` });
const nonNegative = (what: string) => z.number({ error: `expected ${what} (a number >= 0)` }).min(0, { error: `expected ${what} (a number >= 0)` });
const share = (what: string) => {
  const error = `expected ${what} (a number from 0 to 1)`;
  return z.number({ error }).min(0, { error }).max(1, { error });
};

const MIB = 1024 * 1024;

const address = z.string().regex(/^\S+:\d+$|^[a-z]+:\/\/?\S+$/, { error: 'expected host:port (or a grpc-js target such as dns:///privacy:50051)' });

/**
 * The privacy service (issue 6). With `address` set, users' stored models are sealed with their
 * data keys (AES-256-GCM, keys from the privacy service's DataKeyService) and consent is enforced:
 * Score uses a model only with `personalization` consent, Train and Refit learn only with
 * `training` consent, checked in a local cache fed by ConsentChanged (which needs the event bus).
 * Unset: nothing is checked and models are stored unencrypted (development and tests only).
 */
export const privacyConfigSchema = z.strictObject({
  /** host:port of the privacy service (aimass.v1.PrivacyService and DataKeyService); unset: no enforcement, no encryption. */
  address: address.optional(),
  /** Deadline of one GetConsent on a consent-cache miss. */
  lookupTimeoutMs: positiveInt('a duration in milliseconds').default(DEFAULT_LOOKUP_TIMEOUT_MS),
  /** The consent cache (see @aimass/consent). */
  cache: consentCacheConfigSchema.prefault({}),
  /** Users' data keys fetched from the privacy service (PrivacyDataKeySource in @aimass/crypto). */
  keys: remoteDataKeysConfigSchema.prefault({}),
  /**
   * Also read versions stored unencrypted (written before the address was set). Off: such a
   * version reads as no model. New versions are always sealed once the address is set.
   */
  allowPlaintext: z.boolean().default(false),
});

/** FTRL-Proximal hyper-parameters (see `PersonalModel` in @aimass/ml for what each does). */
export const learnerConfigSchema = z.strictObject({
  alpha: positive('a learning-rate scale').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.alpha),
  beta: nonNegative('a smoothing constant').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.beta),
  l1: nonNegative('an L1 strength').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.l1),
  denseAlpha: positive('a learning-rate scale').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.denseAlpha),
  correctionDenseAlpha: positive('a learning-rate scale').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.correctionDenseAlpha),
  denseL1: nonNegative('an L1 strength').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.denseL1),
  l2: nonNegative('an L2 strength').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.l2),
  headerAlpha: positive('a learning-rate scale').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.headerAlpha),
  correctionOffsetClip: positive('a logit bound').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.correctionOffsetClip),
  correctionLogitClip: positive('a logit bound').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.correctionLogitClip),
  confirmationWeight: share('a share of the gradient').default(DEFAULT_PERSONAL_LEARNER_OPTIONS.confirmationWeight),
});

/** Where versions are stored (the standalone process; the embedded mode uses the runner's store). */
export const personalModelStoreConfigSchema = storeConfigSchema({ path: 'data/personal-model.sqlite', database: 'personal_model' });

/** The `personalModel` section (env: `AIMASS_PERSONAL_MODEL__<KEY>`). */
export const personalModelConfigSchema = z.strictObject({
  cache: z
    .strictObject({
      /** Bound of the model cache, in bytes: each model's in-memory size plus a fixed overhead per entry. */
      maxBytes: positiveInt('a size in bytes').default(256 * MIB),
      /**
       * How long a cached model is trusted before its current version is checked again in the
       * store (one point read; the parameters are reloaded only when it changed). Bounds how stale
       * a replica can be after another replica trained the same user. 0 checks on every call.
       */
      revalidateMs: z.number().int().min(0).default(5_000),
    })
    .prefault({}),
  /** Versions kept per user; older ones are deleted when a new one is written. */
  versionsKept: positiveInt('a number of versions').max(1000).default(10),
  limits: z
    .strictObject({
      /** Items one Score request may carry. */
      maxScoreItems: positiveInt('a number of items').default(1024),
      /** Examples one Train or Refit request may carry. */
      maxTrainExamples: positiveInt('a number of examples').default(10_000),
      /** Length of an idempotency key. */
      maxIdempotencyKeyLength: positiveInt('a length').max(512).default(200),
      /** Non-zero entries of one sparse feature vector. */
      maxSparseEntries: positiveInt('a number of entries').default(65_536),
    })
    .prefault({}),
  /**
   * The general model's labels, in its output order, for models trained from now on (the
   * request carries only logits; each stored version keeps the labels it was trained with).
   */
  labels: z.array(z.string().min(1)).min(2).default(['ham', 'spam']),
  /** Name personal models carry in ModelRef.name. */
  modelName: z.string().min(1).default('personal-logreg'),
  /** Sparse dimension of a model first trained without sparse features (the personal featurizer's default). */
  sparseDimension: positiveInt('a dimension').default(DEFAULT_PERSONAL_FEATURIZER_OPTIONS.dimension),
  learner: learnerConfigSchema.prefault({}),
  /** What a stored version keeps of the sparse state (see PersonalModel.prune in @aimass/ml). */
  pruning: z
    .strictObject({
      /** Forget sparse coordinates with |z| below this in every head (≤ learner.l1 never changes a prediction); 0 keeps all. */
      minAbsZ: nonNegative('an evidence threshold').default(0),
      /** Most sparse coordinates a version keeps (the strongest); bounds a model to about 20 bytes each plus 1 KB. */
      maxSparseCoordinates: positiveInt('a number of coordinates').default(4096),
    })
    .prefault({}),
  /**
   * The consumer group of ErasureRequested (with a bus): every version and cached copy of the
   * user's model is deleted, then ErasureCompleted confirms it.
   */
  erasure: erasureConsumerConfigSchema('personal-model-erasure').prefault({}),
  /**
   * The consumer group of TenantDeleted (with a bus): every model of the tenant is deleted, then
   * TenantDeletionCompleted confirms it. Same keys as `erasure`.
   */
  tenantDeletion: tenantDeletionConsumerConfigSchema('personal-model-tenant-deletion').prefault({}),
  privacy: privacyConfigSchema.prefault({}),
});

export type PersonalModelConfig = z.output<typeof personalModelConfigSchema>;
/** What `startPersonalModel` accepts: any subset, in the text or parsed form. */
export type PersonalModelConfigInput = z.input<typeof personalModelConfigSchema>;

/** The service's whole configuration: base keys plus `personalModel`. */
export const serviceConfigSchema = z.strictObject({
  ...baseConfigShape,
  serviceName: baseConfigShape.serviceName.default('personal-model'),
  store: personalModelStoreConfigSchema.prefault({}),
  /** The event bus (env `AIMASS_EVENTS__KIND`, `AIMASS_EVENTS__SERVERS`, ...); none by default. */
  events: eventsConfigSchema.prefault({}),
  personalModel: personalModelConfigSchema.prefault({}),
  /** Authentication (env `AIMASS_AUTH__<KEY>`): `none` by default for now; production sets `api-keys`. */
  auth: authConfigSchema.prefault({}),
}).superRefine((config, ctx) => {
  if (config.personalModel.privacy.address !== undefined && config.events.kind === 'none') {
    ctx.addIssue({
      code: 'custom',
      path: ['personalModel', 'privacy', 'address'],
      message: 'consent enforcement needs the event bus that carries ConsentChanged: set events.kind to nats (AIMASS_EVENTS__KIND, AIMASS_EVENTS__SERVERS), or unset the address',
    });
  }
});

export type ServiceConfig = z.output<typeof serviceConfigSchema>;
