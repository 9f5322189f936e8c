import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { credentials as grpcCredentials, status as Status, type ClientDuplexStream } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { UnaryCaller, channelOptionsOf, positiveMs, type CallOptions, type ConnectionOptions, type UnaryMethod } from './caller.js';
import { toAiMassError, type AiMassError } from './errors.js';
import { toInputPayload, type Input } from './input.js';
import { strategyCode, toPredictionResult, type PredictionResult, type Strategy } from './results.js';

/**
 * Options of the client of the public API. `address` is the fusion service's; retries apply to the
 * calls safe to repeat (Predict, PredictBatch, Feedback).
 */
export interface AiMassClientOptions extends ConnectionOptions {
  /** Deadline of a prediction stream that sets none. Default 60000 ms. */
  defaultStreamDeadlineMs?: number | undefined;
}

/** What a prediction is asked to do. */
export interface PredictSettings {
  /** Overrides the tenant's default strategy. */
  strategy?: Strategy | v1.FusionStrategy | undefined;
  /** Only the k most probable classes; 0 or unset returns all. */
  topK?: number | undefined;
  /** Adds the general model's embedding. */
  includeEmbedding?: boolean | undefined;
  /** Adds the general and personal results before fusion. */
  includeComponents?: boolean | undefined;
  /** Pins a general model; unset uses the tenant's. */
  generalModel?: { name?: string | undefined; version?: string | undefined } | undefined;
}

export interface PredictOptions extends CallOptions, PredictSettings {}

export interface BatchItem {
  userId: string;
  input: Input;
  /** Echoed in the item's result; the item's index when unset. */
  itemId?: string | undefined;
}

/** One item's outcome: items of a batch or a stream fail independently. */
export type ItemResult = { itemId: string; ok: true; prediction: PredictionResult } | { itemId: string; ok: false; error: AiMassError };

export interface StreamItem {
  /** Results may come back out of order: match them by this id. */
  itemId: string;
  userId: string;
  input: Input;
  /** Per-item settings; the stream's own when unset. */
  options?: PredictSettings | undefined;
}

export interface PredictStreamOptions extends CallOptions, PredictSettings {}

export type FeedbackRequest = {
  userId: string;
  /** The true label, one of the model's labels. */
  label: string;
  /**
   * Makes retries safe: the same key is recorded once. Generated when unset (and then returned);
   * pass your own to deduplicate across process restarts too.
   */
  idempotencyKey?: string | undefined;
  /** When the user gave the feedback; the server's receive time when unset. */
  occurredAt?: Date | undefined;
} & ({ predictionId: string; input?: undefined } | { input: Input; predictionId?: undefined });

export interface FeedbackResult {
  accepted: boolean;
  eventId: string;
  /** True when the key had already been recorded (by an earlier attempt or call). */
  duplicate: boolean;
  /** The key used, generated or yours. */
  idempotencyKey: string;
}

function predictOptions(s: PredictSettings): v1.PredictOptions {
  return {
    strategy: strategyCode(s.strategy),
    topK: s.topK ?? 0,
    includeEmbedding: s.includeEmbedding ?? false,
    includeComponents: s.includeComponents ?? false,
    generalModel: s.generalModel ? { name: s.generalModel.name ?? '', version: s.generalModel.version ?? '' } : undefined,
  };
}

function itemResult(r: v1.PredictItemResult): ItemResult {
  const outcome = r.outcome;
  if (outcome?.$case === 'prediction') return { itemId: r.itemId, ok: true, prediction: toPredictionResult(outcome.value) };
  if (outcome?.$case === 'error') {
    return { itemId: r.itemId, ok: false, error: toAiMassError({ code: outcome.value.code, details: outcome.value.message }) };
  }
  return { itemId: r.itemId, ok: false, error: toAiMassError({ code: Status.INTERNAL, details: 'the server sent an item result with neither a prediction nor an error' }) };
}

/**
 * The AI Mass client for backends: predictions fused from the general and each user's personal
 * model, and the feedback that trains the personal model.
 *
 * - Every call carries the tenant (`x-aimass-tenant`), the API key when given
 *   (`authorization: Bearer …`) and a deadline.
 * - Predict, PredictBatch and Feedback are retried on UNAVAILABLE with exponential backoff inside
 *   the call's deadline: predictions change nothing, and feedback always carries an idempotency
 *   key, so a repeat is recorded once. Streams are never retried.
 * - Failures are thrown as AiMassError subclasses (InvalidArgumentError with `field`,
 *   ResourceExhaustedError with `retryAfterMs`, …).
 */
export class AiMassClient {
  readonly #client: v1.InferenceServiceClient;
  readonly #caller: UnaryCaller;
  readonly #streamDeadlineMs: number;

  constructor(options: AiMassClientOptions) {
    this.#caller = new UnaryCaller(options);
    this.#streamDeadlineMs = positiveMs('defaultStreamDeadlineMs', options.defaultStreamDeadlineMs, 60_000);
    this.#client = new v1.InferenceServiceClient(options.address, options.credentials ?? grpcCredentials.createInsecure(), channelOptionsOf(options));
  }

  /** Classifies one input for one user. */
  async predict(userId: string, input: Input, options: PredictOptions = {}): Promise<PredictionResult> {
    const request: v1.PredictRequest = { userId, input: toInputPayload(input), options: predictOptions(options) };
    const response = await this.#unary<v1.PredictRequest, v1.PredictResponse>('Predict', this.#client.predict, request, options);
    if (!response.prediction) {
      throw toAiMassError({ code: Status.INTERNAL, details: 'the server answered Predict without a prediction' });
    }
    return toPredictionResult(response.prediction);
  }

  /**
   * Classifies many inputs, for one or many users, in one call. Results come in request order;
   * an item that failed has `ok: false` and its error, the others are unaffected.
   */
  async predictBatch(items: readonly BatchItem[], options: PredictOptions = {}): Promise<ItemResult[]> {
    const request: v1.PredictBatchRequest = {
      items: items.map((item, i) => ({ itemId: item.itemId ?? String(i), userId: item.userId, input: toInputPayload(item.input) })),
      options: predictOptions(options),
    };
    const response = await this.#unary<v1.PredictBatchRequest, v1.PredictBatchResponse>('PredictBatch', this.#client.predictBatch, request, options);
    return response.results.map(itemResult);
  }

  /**
   * Opens a prediction stream: `send` items, `end()` when done, and read results with
   * `for await`. Results may come out of order (match them by `itemId`); a failed item is a
   * result with `ok: false`, a failure of the stream itself is thrown by the iteration.
   */
  predictStream(options: PredictStreamOptions = {}): PredictStream {
    const deadline = this.#caller.deadlineOf(options, this.#streamDeadlineMs);
    const call = this.#client.predictStream(this.#caller.metadata(options.metadata), { deadline });
    return new PredictStream(call, predictOptions(options), options.signal);
  }

  /**
   * Streams `items` through one PredictStream and yields the results as they come (possibly out
   * of order). Writing follows the stream's flow control, so a long or endless source is fine.
   */
  async *predictEach(items: Iterable<StreamItem> | AsyncIterable<StreamItem>, options: PredictStreamOptions = {}): AsyncGenerator<ItemResult> {
    const stream = this.predictStream(options);
    const writing = (async () => {
      for await (const item of items) await stream.write(item);
      stream.end();
    })();
    // A failure of the source ends the stream; it is rethrown after the reader stops.
    let sourceError: unknown;
    writing.catch((err: unknown) => {
      sourceError = err;
      stream.cancel();
    });
    try {
      for await (const result of stream) yield result;
    } catch (err) {
      if (sourceError !== undefined) throw sourceError;
      throw err;
    } finally {
      stream.cancel();
    }
    if (sourceError !== undefined) throw sourceError;
  }

  /**
   * Records the true label of a prediction (by `predictionId`) or of an input. Answers once the
   * feedback is durably recorded. Retried like predictions: the idempotency key (yours or one
   * generated here) makes a repeat a no-op that answers `duplicate: true`.
   */
  async feedback(request: FeedbackRequest, options: CallOptions = {}): Promise<FeedbackResult> {
    const idempotencyKey = request.idempotencyKey ?? randomUUID();
    let target: v1.FeedbackRequest['target'];
    if (request.predictionId !== undefined) {
      if (request.input !== undefined) throw new TypeError('feedback: give either predictionId or input, not both');
      target = { $case: 'predictionId', value: request.predictionId };
    } else if (request.input !== undefined) {
      target = { $case: 'input', value: toInputPayload(request.input) };
    } else {
      throw new TypeError('feedback: predictionId or input is required');
    }
    const proto: v1.FeedbackRequest = { userId: request.userId, target, label: request.label, idempotencyKey, occurredAt: request.occurredAt };
    const response = await this.#unary<v1.FeedbackRequest, v1.FeedbackResponse>('Feedback', this.#client.feedback, proto, options);
    return { accepted: response.accepted, eventId: response.eventId, duplicate: response.duplicate, idempotencyKey };
  }

  /** Closes the channel; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.#client.close();
  }

  #unary<Req, Res>(rpc: string, method: UnaryMethod<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    return this.#caller.unary(this.#client, rpc, method, request, options);
  }
}

/** An open PredictStream (see AiMassClient.predictStream). */
export class PredictStream implements AsyncIterable<ItemResult> {
  readonly #call: ClientDuplexStream<v1.PredictStreamRequest, v1.PredictStreamResponse>;
  readonly #defaults: v1.PredictOptions;

  constructor(call: ClientDuplexStream<v1.PredictStreamRequest, v1.PredictStreamResponse>, defaults: v1.PredictOptions, signal: AbortSignal | undefined) {
    this.#call = call;
    this.#defaults = defaults;
    if (signal) {
      const onAbort = () => call.cancel();
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      call.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    // Errors surface through the iteration; without a listener an early one would crash the process.
    call.on('error', () => {});
  }

  #request(item: StreamItem): v1.PredictStreamRequest {
    if (typeof item.itemId !== 'string' || item.itemId === '') throw new TypeError('a stream item needs an itemId: results are matched by it');
    return {
      itemId: item.itemId,
      userId: item.userId,
      input: toInputPayload(item.input),
      options: item.options ? predictOptions(item.options) : this.#defaults,
    };
  }

  /** Queues an item; false means the stream's buffer is full: wait for `write` instead to respect flow control. */
  send(item: StreamItem): boolean {
    return this.#call.write(this.#request(item));
  }

  /** Sends an item, waiting while the stream's buffer is full. */
  async write(item: StreamItem): Promise<void> {
    if (!this.#call.write(this.#request(item))) await once(this.#call, 'drain');
  }

  /** No more items; results still come until the server has answered every one. */
  end(): void {
    this.#call.end();
  }

  /** Stops the stream at once; the iteration ends with CANCELLED. */
  cancel(): void {
    this.#call.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ItemResult> {
    try {
      for await (const message of this.#call as AsyncIterable<v1.PredictStreamResponse>) {
        if (message.result) yield itemResult(message.result);
      }
    } catch (err) {
      throw toAiMassError(err);
    }
  }
}
