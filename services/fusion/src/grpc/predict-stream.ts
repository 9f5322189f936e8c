import { once, setMaxListeners } from 'node:events';
import type { ServerDuplexStream, handleBidiStreamingCall } from '@grpc/grpc-js';
import { CancelledError, DeadlineExceededError, InvalidArgumentError, tenantFromMetadata, toGrpcStatus, type Logger } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import { toDomainError, type ItemOutcome, type PredictContext, type Predictor } from '../runtime/predictor.js';
import { itemResult } from './item-result.js';

export interface PredictStreamOptions {
  readonly predictor: Predictor;
  readonly logger: Logger;
  /** Items predicted at once; reading from the client pauses while this many are in flight. */
  readonly maxInFlight: number;
}

type Call = ServerDuplexStream<v1.PredictStreamRequest, v1.PredictStreamResponse>;

function deadlineOf(call: Call): Date | undefined {
  const d = call.getDeadline();
  if (d instanceof Date) return d;
  return Number.isFinite(d) ? new Date(d) : undefined;
}

/**
 * PredictStream: each request is predicted as it arrives and answered when ready (possibly out of
 * order; results carry the item id). At most `maxInFlight` items are worked on at once, counting
 * an answer until the transport has taken it, so a client that sends fast but reads slowly is
 * slowed down by flow control instead of filling the server's memory. An item's failure is an
 * ItemError in its result; only a missing tenant ends the stream with a status.
 */
export function createPredictStreamHandler(options: PredictStreamOptions): handleBidiStreamingCall<v1.PredictStreamRequest, v1.PredictStreamResponse> {
  return (call: Call) => {
    const logger = options.logger.child({ rpc: call.getPath() });
    const fail = (err: unknown) => {
      const status = toGrpcStatus(err, { logger, method: call.getPath() });
      call.emit('error', Object.assign(new Error(status.details), status));
    };
    let tenant: string;
    try {
      tenant = tenantFromMetadata(call.metadata);
    } catch (err) {
      fail(err);
      return;
    }

    const deadline = deadlineOf(call);
    const controller = new AbortController();
    // Every item in flight waits on this signal (general, then personal), plus the drain wait:
    // more listeners than Node's leak warning expects, by design.
    setMaxListeners(options.maxInFlight + 8, controller.signal);
    const onCancelled = () => {
      const expired = deadline !== undefined && Date.now() >= deadline.getTime();
      controller.abort(expired ? new DeadlineExceededError('deadline exceeded') : new CancelledError('call cancelled by the client'));
    };
    if (call.cancelled) onCancelled();
    else call.once('cancelled', onCancelled);
    // Errors of the transport show up as cancellation; this keeps a stray 'error' from being unhandled.
    call.on('error', () => undefined);
    const ctx: PredictContext = { deadline, signal: controller.signal, logger };

    let inFlight = 0;
    let paused = false;
    let ended = false;
    const finishIfDone = () => {
      if (ended && inFlight === 0 && !call.cancelled) {
        call.removeListener('cancelled', onCancelled);
        call.end();
      }
    };

    const answer = async (result: v1.PredictItemResult) => {
      if (call.cancelled) return;
      if (!call.write({ result })) {
        await once(call, 'drain', { signal: controller.signal }).catch(() => undefined);
      }
    };

    const handle = async (req: v1.PredictStreamRequest) => {
      if (req.itemId === '') {
        await answer(itemResult('', { ok: false, error: new InvalidArgumentError('item_id is required: results are matched to requests by it', { field: 'item_id' }) }, logger));
        return;
      }
      let outcome: ItemOutcome;
      try {
        [outcome] = (await options.predictor.predict(
          tenant,
          [{ itemId: req.itemId, userId: req.userId, input: req.input, options: req.options, field: '' }],
          ctx,
        )) as [ItemOutcome];
      } catch (err) {
        // The whole-call failures of Predict (e.g. too little deadline left) fail just this item here.
        outcome = { ok: false, error: toDomainError(err) };
      }
      await answer(itemResult(req.itemId, outcome, logger));
    };

    call.on('data', (req: v1.PredictStreamRequest) => {
      inFlight++;
      if (inFlight >= options.maxInFlight && !paused) {
        paused = true;
        call.pause();
      }
      handle(req)
        .catch((err: unknown) => logger.error({ err }, 'stream item failed unexpectedly'))
        .finally(() => {
          inFlight--;
          if (paused && inFlight < options.maxInFlight) {
            paused = false;
            call.resume();
          }
          finishIfDone();
        });
    });
    call.on('end', () => {
      ended = true;
      finishIfDone();
    });
  };
}
