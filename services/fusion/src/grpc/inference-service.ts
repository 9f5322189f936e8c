import { InvalidArgumentError, tenantFromMetadata, unary, type CallContext, type Logger } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { requestedStrategy } from '../domain/strategy.js';
import type { FeedbackService } from '../runtime/feedback.js';
import type { PredictContext, Predictor } from '../runtime/predictor.js';
import { itemResult } from './item-result.js';
import { createPredictStreamHandler } from './predict-stream.js';

export interface InferenceServiceOptions {
  readonly predictor: Predictor;
  readonly feedback: FeedbackService;
  readonly logger: Logger;
  /** Items one PredictBatch may carry. */
  readonly maxBatchItems: number;
  /** Stream items predicted at once per PredictStream call. */
  readonly maxStreamInFlight: number;
}

function predictContext(ctx: CallContext): PredictContext {
  return { deadline: ctx.deadline, signal: ctx.signal, logger: ctx.logger };
}

/**
 * aimass.v1.InferenceService. The tenant comes from the `x-aimass-tenant` metadata of every call;
 * user ids are pseudonymized by the predictor before anything else sees them.
 */
export function createInferenceService(options: InferenceServiceOptions): v1.InferenceServiceServer {
  const { predictor, feedback } = options;
  return {
    predict: unary<v1.PredictRequest, v1.PredictResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const [outcome] = await predictor.predict(tenant, [{ itemId: '', userId: req.userId, input: req.input, options: req.options, field: '' }], predictContext(ctx));
      if (!outcome!.ok) throw outcome!.error;
      return { prediction: outcome!.prediction };
    }),

    predictBatch: unary<v1.PredictBatchRequest, v1.PredictBatchResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      if (req.items.length === 0) throw new InvalidArgumentError('items must not be empty', { field: 'items' });
      if (req.items.length > options.maxBatchItems) {
        throw new InvalidArgumentError(`${req.items.length} items exceed the limit of ${options.maxBatchItems} per PredictBatch: split the batch`, { field: 'items' });
      }
      // Options are shared by every item: a bad one fails the call, not each item.
      requestedStrategy(req.options?.strategy, v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED, 'options.strategy');
      const items = req.items.map((item, i) => ({
        itemId: item.itemId || String(i),
        userId: item.userId,
        input: item.input,
        options: req.options,
        field: `items[${i}]`,
      }));
      const outcomes = await predictor.predict(tenant, items, predictContext(ctx));
      return { results: outcomes.map((outcome, i) => itemResult(items[i]!.itemId, outcome, ctx.logger)) };
    }),

    predictStream: createPredictStreamHandler({ predictor, logger: options.logger, maxInFlight: options.maxStreamInFlight }),

    feedback: unary<v1.FeedbackRequest, v1.FeedbackResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      return feedback.feedback(tenant, req, predictContext(ctx));
    }),
  };
}
