import { PERSONAL_MODEL_FORMAT, type PersonalPrediction } from '@aimass/ml';
import { InvalidArgumentError, tenantFromMetadata, unary } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { PersonalModelConfig } from '../config.js';
import {
  checkCount,
  checkGeneralOutput,
  checkGeneralRef,
  checkIdempotencyKey,
  checkPseudonym,
  checkSparse,
  checkWeight,
  modelInput,
} from '../domain/validation.js';
import { describeGeneralModel, sameGeneralModel, type UpdateKindName, type VersionInfo } from '../domain/versions.js';
import { asInvalidArgument, type ExampleInput, type LoadedModel, type PersonalModelAccess } from '../runtime/personal-models.js';

export interface PersonalModelServiceOptions {
  /** `PersonalModels`, or it wrapped in consent enforcement (`ConsentCheckingModels`). */
  models: PersonalModelAccess;
  config: Pick<PersonalModelConfig, 'modelName' | 'limits'>;
}

const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;

const KIND: Record<UpdateKindName, v1.UpdateKind> = {
  TRAIN: v1.UpdateKind.UPDATE_KIND_TRAIN,
  REFIT: v1.UpdateKind.UPDATE_KIND_REFIT,
  ROLLBACK: v1.UpdateKind.UPDATE_KIND_ROLLBACK,
};

/** uint64 fields arrive as numbers (forceLong=number); anything else is a malformed request. */
function checkVersionNumber(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(`${field} must be a whole number >= 0`, { field });
  return value;
}

export function createPersonalModelService(options: PersonalModelServiceOptions): v1.PersonalModelServiceServer {
  const { models, config } = options;
  const { limits } = config;

  const info = (user: string, i: VersionInfo, current: boolean): v1.PersonalModelInfo => ({
    userPseudonym: user,
    model: { name: config.modelName, version: String(i.version) },
    version: i.version,
    generalModel: { name: i.generalModel.name, version: i.generalModel.version },
    exampleCount: i.exampleCount,
    kind: KIND[i.kind],
    restoredFromVersion: i.restoredFromVersion,
    createdAt: i.createdAt,
    current,
    lastAppliedSequence: i.lastAppliedSequence,
  });

  const examplesOf = (examples: v1.TrainingExample[], field: string, defaultGeneral?: v1.ModelRef): ExampleInput[] => {
    checkCount(examples.length, field, limits.maxTrainExamples, 'example');
    return examples.map((e, i) => {
      const at = `${field}[${i}]`;
      const general = e.general && !e.general.model && defaultGeneral ? { ...e.general, model: defaultGeneral } : e.general;
      return {
        general: checkGeneralOutput(general, `${at}.general`),
        sparse: checkSparse(e.sparseFeatures, `${at}.sparse_features`, limits.maxSparseEntries),
        label: e.label,
        weight: checkWeight(e.weight, `${at}.weight`),
        sourceSequence: checkVersionNumber(e.sourceSequence, `${at}.source_sequence`),
        field: at,
      };
    });
  };

  return {
    score: unary<v1.ScoreRequest, v1.ScoreResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      checkCount(req.items.length, 'items', limits.maxScoreItems, 'item');
      const checked = req.items.map((item, i) => ({
        item,
        user: checkPseudonym(item.userPseudonym, `items[${i}].user_pseudonym`),
        general: checkGeneralOutput(item.general, `items[${i}].general`),
        sparse: checkSparse(item.sparseFeatures, `items[${i}].sparse_features`, limits.maxSparseEntries),
        field: `items[${i}]`,
      }));
      // One load per user, all users of the batch at once.
      const users = new Map<string, Promise<LoadedModel | undefined>>();
      for (const c of checked) if (!users.has(c.user)) users.set(c.user, models.current(tenant, c.user));
      const loaded = new Map<string, LoadedModel | undefined>();
      for (const [user, promise] of users) loaded.set(user, await promise);

      const results = checked.map(({ item, user, general, sparse, field }): v1.ScoreResult => {
        const current = loaded.get(user);
        const base: v1.ScoreResult = {
          itemId: item.itemId,
          status: v1.ScoreStatus.SCORE_STATUS_NO_MODEL,
          model: undefined,
          logits: [],
          probabilities: [],
          pairedGeneralModel: undefined,
          correctionLogits: [],
          exampleCount: 0,
        };
        if (!current) return base;
        const paired = current.info.generalModel;
        const withModel = {
          ...base,
          model: { name: config.modelName, version: String(current.info.version) },
          pairedGeneralModel: { name: paired.name, version: paired.version },
          exampleCount: current.info.exampleCount,
        };
        if (!sameGeneralModel(paired, general.model)) return { ...withModel, status: v1.ScoreStatus.SCORE_STATUS_GENERAL_VERSION_MISMATCH };
        const input = modelInput(general, sparse, { labels: current.info.labels, embeddingDim: current.model.embeddingDim, sparseDimension: current.model.sparseDimension }, `${field}.general`, `${field}.sparse_features`);
        let prediction: PersonalPrediction;
        try {
          prediction = current.model.predict(input);
        } catch (err) {
          return asInvalidArgument(err, field);
        }
        return {
          ...withModel,
          status: v1.ScoreStatus.SCORE_STATUS_OK,
          logits: prediction.logits,
          probabilities: prediction.probabilities,
          correctionLogits: prediction.correctionLogits,
        };
      });
      return { results };
    }),

    train: unary<v1.TrainRequest, v1.TrainResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const user = checkPseudonym(req.userPseudonym);
      const examples = examplesOf(req.examples, 'examples');
      const idempotencyKey = checkIdempotencyKey(req.idempotencyKey, 'idempotency_key', limits.maxIdempotencyKeyLength);
      const expectedVersion = checkVersionNumber(req.expectedVersion, 'expected_version');
      const result = await models.train(tenant, user, examples, { expectedVersion, idempotencyKey, signal: ctx.signal, deadline: ctx.deadline });
      ctx.logger.debug({ tenant, user, version: result.info.version, duplicate: result.duplicate, applied: result.applied, skipped: result.skipped }, 'trained personal model');
      return { model: info(user, result.info, result.current), duplicate: result.duplicate, examplesApplied: result.applied, examplesSkipped: result.skipped };
    }),

    getModel: unary<v1.GetModelRequest, v1.GetModelResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const user = checkPseudonym(req.userPseudonym);
      const version = checkVersionNumber(req.version, 'version');
      const { stored, current } = await models.version(tenant, user, version);
      return {
        model: info(user, stored.info, current),
        parameters: req.includeParameters ? Buffer.from(stored.parameters.buffer, stored.parameters.byteOffset, stored.parameters.byteLength) : Buffer.alloc(0),
        parametersContentType: req.includeParameters ? PERSONAL_MODEL_FORMAT.contentType : '',
      };
    }),

    listVersions: unary<v1.ListVersionsRequest, v1.ListVersionsResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const user = checkPseudonym(req.userPseudonym);
      const limit = Math.min(req.page?.pageSize || DEFAULT_PAGE, MAX_PAGE);
      const page = await models.listVersions(tenant, user, { limit, cursor: req.page?.pageToken || undefined });
      return { versions: page.items.map((i) => info(user, i, i.version === page.current)), nextPageToken: page.nextCursor ?? '' };
    }),

    rollback: unary<v1.RollbackRequest, v1.RollbackResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const user = checkPseudonym(req.userPseudonym);
      const toVersion = checkVersionNumber(req.toVersion, 'to_version');
      if (toVersion === 0) throw new InvalidArgumentError('to_version is required: the version whose parameters become current (see ListVersions)', { field: 'to_version' });
      const expectedVersion = checkVersionNumber(req.expectedVersion, 'expected_version');
      const result = await models.rollback(tenant, user, toVersion, { expectedVersion, signal: ctx.signal, deadline: ctx.deadline });
      ctx.logger.info({ tenant, user, version: result.version, restoredFrom: toVersion }, 'rolled back personal model');
      return { model: info(user, result, true) };
    }),

    deleteUser: unary<v1.DeleteUserRequest, v1.DeleteUserResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const user = checkPseudonym(req.userPseudonym);
      const deletedVersions = await models.deleteUser(tenant, user, req.erasureId || undefined);
      ctx.logger.info({ tenant, user, deletedVersions, erasureId: req.erasureId || undefined }, 'deleted personal model');
      return { deletedVersions };
    }),

    refit: unary<v1.RefitRequest, v1.RefitResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const user = checkPseudonym(req.userPseudonym);
      const generalModel = checkGeneralRef(req.generalModel, 'general_model');
      const examples = examplesOf(req.examples, 'examples', generalModel);
      const idempotencyKey = checkIdempotencyKey(req.idempotencyKey, 'idempotency_key', limits.maxIdempotencyKeyLength);
      const expectedVersion = checkVersionNumber(req.expectedVersion, 'expected_version');
      const result = await models.refit(tenant, user, generalModel, examples, { expectedVersion, idempotencyKey, signal: ctx.signal, deadline: ctx.deadline });
      ctx.logger.info({ tenant, user, version: result.info.version, duplicate: result.duplicate, examples: examples.length, generalModel: describeGeneralModel(generalModel) }, 'refit personal model');
      return { model: info(user, result.info, result.current), duplicate: result.duplicate };
    }),
  };
}
