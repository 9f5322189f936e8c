import { authConfigSchema } from '@aimass/auth';
import { availableParallelism } from 'node:os';
import { baseConfigShape, quotasConfigSchema } from '@aimass/platform';
import { z } from 'zod';
import { ModelConfigError, parseVersionPolicy } from './domain/model-config.js';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const modelName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, { error: 'expected a model directory name' });

const versionPolicyObject = z.union([
  z.strictObject({ kind: z.literal('latest'), numVersions: z.number().int().positive() }),
  z.strictObject({ kind: z.literal('all') }),
  z.strictObject({ kind: z.literal('specific'), versions: z.array(z.number().int().positive()).min(1) }),
]);

/** The compact text form (env friendly), or the parsed form (so a parsed config parses again unchanged). */
const versionPolicy = z.union([
  versionPolicyObject,
  z.string().transform((text, ctx) => {
    try {
      return parseVersionPolicy(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof ModelConfigError ? err.message : String(err) });
      return z.NEVER;
    }
  }),
]);

/** Two cores here: one worker per spare core, at least one, at most two by default. */
const defaultPoolSize = Math.max(1, Math.min(2, availableParallelism()));

/** The `generalModel` section (env: `AIMASS_GENERAL_MODEL__<KEY>`). */
export const generalModelConfigSchema = z.strictObject({
  /** The model repository directory (Triton layout). */
  repository: z.string().min(1).default('models'),
  /** Models loaded at startup: `all` (every model directory) or a list (empty: none, load over gRPC). */
  models: z.union([z.literal('all'), z.array(modelName)]).default('all'),
  /** Version policy for models whose config sets none: latest, latest:N, all, specific:1,3. */
  versionPolicy: versionPolicy.prefault('latest:1'),
  /** Model the task API (aimass.v1.GeneralModelService) serves when a request names none. */
  taskModel: modelName.default('general'),
  /** Inference worker threads. */
  poolSize: positiveInt('a number of workers').max(64).default(defaultPoolSize),
  /** onnxruntime intra-op threads per session (per worker). */
  intraOpThreads: positiveInt('a number of threads').max(256).default(1),
  /** Execution providers in order of preference; unavailable ones are skipped with a logged reason, cpu is the last resort. */
  executionProviders: z.array(z.string().min(1)).min(1).default(['cuda', 'cpu']),
  graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
  /** Run one inference on zeros in every worker when a version loads, before it takes traffic. */
  warmup: z.boolean().default(true),
  /** Dynamic batching defaults; a model's config.pbtxt / config.json overrides them. */
  batching: z
    .strictObject({
      maxBatchSize: positiveInt('a number of rows').default(64),
      maxQueueDelayMs: z.number().min(0).max(10_000).default(0),
      preferredBatchSizes: z.array(positiveInt('a number of rows')).default([]),
      maxQueueRows: positiveInt('a number of rows').default(4096),
      /** Batches of one version running at once, per worker (2 overlaps the thread hop with compute). */
      batchesInFlightPerWorker: positiveInt('a number of batches').max(16).default(1),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Accept NaN/Inf in floating-point inputs (a model's allow_non_finite parameter overrides it). */
      allowNonFinite: z.boolean().default(false),
      /** Elements one input of one request may have. */
      maxInputElements: positiveInt('a number of elements').default(16 * 1024 * 1024),
    })
    .prefault({}),
});

export type GeneralModelConfig = z.output<typeof generalModelConfigSchema>;
/** What `startGeneralModel` accepts: any subset, in the text or parsed form. */
export type GeneralModelConfigInput = z.input<typeof generalModelConfigSchema>;

/** The service's whole configuration: base keys plus `generalModel`. */
export const serviceConfigSchema = z.strictObject({
  ...baseConfigShape,
  serviceName: baseConfigShape.serviceName.default('general-model'),
  generalModel: generalModelConfigSchema.prefault({}),
  /** Authentication (env `AIMASS_AUTH__<KEY>`): `none` by default for now; production sets `api-keys`. */
  auth: authConfigSchema.prefault({}),
  /** Per-tenant request rate and concurrency (env `AIMASS_QUOTAS__<KEY>`); unlimited by default. */
  quotas: quotasConfigSchema.prefault({}),
});

export type ServiceConfig = z.output<typeof serviceConfigSchema>;
