import { authConfigSchema } from '@aimass/auth';
import { DEFAULT_LOOKUP_TIMEOUT_MS, consentCacheConfigSchema } from '@aimass/consent';
import { remoteDataKeysConfigSchema } from '@aimass/crypto';
import { erasureConsumerConfigSchema, eventsConfigSchema, tenantDeletionConsumerConfigSchema } from '@aimass/events';
import { baseConfigShape, pseudonymConfigSchema } from '@aimass/platform';
import { storeConfigSchema } from '@aimass/storage';
import { z } from 'zod';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const nonNegativeInt = (what: string) => {
  const error = `expected ${what} (a whole number >= 0)`;
  return z.number({ error }).int({ error }).min(0, { error });
};

const address = z.string().regex(/^\S+:\d+$|^[a-z]+:\/\/?\S+$/, { error: 'expected host:port (or a grpc-js target such as dns:///personal-model:50051)' });

const durable = z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a consumer name of letters, digits, _ and -' });

/** The `updater` section (env: `AIMASS_UPDATER__<KEY>`). */
export const updaterConfigSchema = z.strictObject({
  personalModel: z
    .strictObject({
      /** The personal-model service (aimass.v1.PersonalModelService). */
      address: address.default('127.0.0.1:50052'),
      /** Deadline of one call (GetModel, Train, Refit). */
      callTimeoutMs: positiveInt('a duration in milliseconds').default(10_000),
      /**
       * Encoded examples per Train or Refit request, kept under personal-model's message limit
       * (its grpc.maxReceiveMessageBytes, 4 MiB by default). A refit whose history is larger
       * learns from the most recent examples that fit.
       */
      maxRequestBytes: positiveInt('a size in bytes').default(3_800_000),
    })
    .prefault({}),
  generalModel: z
    .strictObject({
      /** The general-model service (aimass.v1.GeneralModelService): refits, and feedback without a general output. */
      address: address.default('127.0.0.1:50051'),
      /** The general model whose served version personal models follow; empty: the service's default task model. */
      model: z.string().default(''),
      /** Deadline of one call (Classify, ListModels). */
      callTimeoutMs: positiveInt('a duration in milliseconds').default(30_000),
      /** Inputs per Classify call during a refit (the general model accepts up to 1024). */
      classifyBatch: positiveInt('a number of inputs').max(1024).default(256),
    })
    .prefault({}),
  /** Incremental updates. */
  apply: z
    .strictObject({
      /** How long a user's first new event waits for more of theirs before the update starts. */
      batchWindowMs: nonNegativeInt('a duration in milliseconds').max(10_000).default(20),
      /** Examples per Train call; a larger backlog is applied in several versions. */
      maxBatch: positiveInt('a number of examples').max(10_000).default(256),
      /** Users updated at once. */
      concurrency: positiveInt('a number of users').max(256).default(32),
      /** Compare-and-set conflicts (another replica wrote first) retried within one update before it backs off. */
      maxConflicts: positiveInt('a number of attempts').default(8),
      /** Back-off after a failed update (personal-model unreachable, ...), doubling per failure up to retryMaxMs. */
      retryInitialMs: positiveInt('a duration in milliseconds').default(200),
      retryMaxMs: positiveInt('a duration in milliseconds').default(10_000),
    })
    .prefault({}),
  /** The periodic look for users left pending (a replica that stopped after taking an event in but before applying it). */
  sweep: z
    .strictObject({
      /** 0 turns the periodic sweep off (the one at start still runs). */
      intervalMs: nonNegativeInt('a duration in milliseconds').default(30_000),
      /** Users marked more recently than this are left to the replica that marked them. */
      graceMs: nonNegativeInt('a duration in milliseconds').default(5_000),
    })
    .prefault({}),
  /** The durable consumer of feedback events. */
  consumer: z
    .strictObject({
      /** Consumer group name; every replica uses the same one and they share the partitions. */
      durable: durable.default('updater'),
      /**
       * Attempts after which a failing event is dead-lettered. Only poison events fail here (the
       * intake retries store outages itself), so a few quick attempts are enough.
       */
      maxDeliver: positiveInt('a number of attempts').max(100).default(3),
      /** Delay before each redelivery after a failure; the last entry repeats. */
      backoffMs: z.array(nonNegativeInt('a duration in milliseconds')).min(1).default([200, 1_000]),
      /** An unacknowledged delivery is redelivered after this. */
      ackWaitMs: positiveInt('a duration in milliseconds').default(10_000),
      /** Partition lease lifetime (NATS): how soon survivors take over a dead replica's partitions. */
      leaseTtlMs: positiveInt('a duration in milliseconds').optional(),
    })
    .prefault({}),
  /**
   * The consumer group of ErasureRequested: the user's history, training state and refit jobs are
   * deleted, the model again (see the README, "Erasure"), then ErasureCompleted confirms it.
   */
  erasure: erasureConsumerConfigSchema('updater-erasure').prefault({}),
  /** The consumer group of TenantDeleted: the tenant's data deleted, then TenantDeletionCompleted (same keys as `erasure`). */
  tenantDeletion: tenantDeletionConsumerConfigSchema('updater-tenant-deletion').prefault({}),
  /** Watching the general model for a new served version. */
  watch: z
    .strictObject({
      /** How often ListModels is asked; 0 turns the watch off. */
      intervalMs: nonNegativeInt('a duration in milliseconds').default(30_000),
    })
    .prefault({}),
  /**
   * The privacy service (issue 6): one switch. With `address` set, a user's feedback is taken in
   * and trained on only with their `training` consent (checked at intake and again right before
   * each Train or Refit, in a local cache fed by ConsentChanged), and payloads are opened and
   * sealed with the user's data key, fetched from privacy's DataKeyService. Unset: nothing is
   * checked and payloads are read as plaintext (`plaintextSealer`): development and tests only.
   */
  privacy: z
    .strictObject({
      /** The privacy service (aimass.v1.PrivacyService and DataKeyService); unset: no consent checks, no encryption. */
      address: address.optional(),
      /** Deadline of one GetConsent on a cache miss. */
      lookupTimeoutMs: positiveInt('a duration in milliseconds').default(DEFAULT_LOOKUP_TIMEOUT_MS),
      cache: consentCacheConfigSchema.prefault({}),
      keys: remoteDataKeysConfigSchema.prefault({}),
      /**
       * Also read payloads that are not encrypted (algorithm NONE): feedback published, or history
       * stored, before keys were configured. Such payloads are sealed with the user's key when
       * they are taken in; history already stored stays as it is. Off: they are refused.
       */
      allowPlaintext: z.boolean().default(false),
    })
    .prefault({}),
  /** ExportFeedback (the privacy service's Export). */
  export: z
    .strictObject({
      /** History entries one call returns at most (the oldest); the rest is counted in `omitted`. */
      maxEntries: positiveInt('a number of entries').max(100_000).default(10_000),
      /** Encoded entries per answer, kept under the caller's message limit (4 MiB by default). */
      maxBytes: positiveInt('a size in bytes').default(3_800_000),
    })
    .prefault({}),
  refit: z
    .strictObject({
      /** Users refitted at once (each refit runs the general model over the user's whole history). */
      concurrency: positiveInt('a number of users').max(64).default(2),
      /** History entries a refit learns from: the most recent ones (personal-model accepts up to 10,000 per call). */
      maxExamples: positiveInt('a number of examples').max(10_000).default(10_000),
      /** A running job whose owner has not written it for this long is taken over by another replica. */
      jobStaleMs: positiveInt('a duration in milliseconds').default(60_000),
    })
    .prefault({}),
});

export type UpdaterConfig = z.output<typeof updaterConfigSchema>;
/** What `startUpdater` accepts: any subset, in the text or parsed form. */
export type UpdaterConfigInput = z.input<typeof updaterConfigSchema>;

/** The `store` section of the standalone service: feedback history, training state, refit jobs. */
export const updaterStoreConfigSchema = storeConfigSchema({ path: 'data/updater.sqlite', database: 'updater' });

/** The updater cannot work without the stream it consumes. */
export const updaterEventsConfigSchema = eventsConfigSchema.refine((c) => c.kind !== 'none', {
  error: 'the updater consumes feedback events: set events.kind (AIMASS_EVENTS__KIND) to nats and events.servers (AIMASS_EVENTS__SERVERS)',
  path: ['kind'],
});

/** The service's whole configuration: base keys, `pseudonym`, `store`, `events` and `updater`. */
export const serviceConfigSchema = z.strictObject({
  ...baseConfigShape,
  serviceName: baseConfigShape.serviceName.default('updater'),
  pseudonym: pseudonymConfigSchema,
  store: updaterStoreConfigSchema.prefault({}),
  events: updaterEventsConfigSchema.prefault({}),
  updater: updaterConfigSchema.prefault({}),
  /** Authentication (env `AIMASS_AUTH__<KEY>`): `none` by default for now; production sets `api-keys`. */
  auth: authConfigSchema.prefault({}),
});

export type ServiceConfig = z.output<typeof serviceConfigSchema>;
