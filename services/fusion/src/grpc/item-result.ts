import { toGrpcStatus, type Logger } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import type { ItemOutcome } from '../runtime/predictor.js';

/**
 * A batch or stream item's result: its prediction, or its error as the status code and message the
 * same error would have given a whole call (internal errors logged with a reference, as for calls).
 */
export function itemResult(itemId: string, outcome: ItemOutcome, logger: Logger): v1.PredictItemResult {
  if (outcome.ok) return { itemId, outcome: { $case: 'prediction', value: outcome.prediction } };
  const status = toGrpcStatus(outcome.error, { logger });
  return { itemId, outcome: { $case: 'error', value: { code: status.code, message: status.details } } };
}
