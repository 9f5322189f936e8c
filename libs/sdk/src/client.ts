import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  Metadata,
  credentials as grpcCredentials,
  status as Status,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { CancelledError, toAiMassError, type AiMassError } from './errors.js';
import { toInputPayload, type Input } from './input.js';
import { strategyCode, toPredictionResult, type PredictionResult, type Strategy } from './results.js';
import { resolveRetry, withRetry, type ResolvedRetry, type RetryInfo, type RetryOptions } from './retry.js';

export const SDK_VERSION = '0.1.0';
/** Metadata key of the tenant a call is made for. */
export const TENANT_METADATA_KEY = 'x-aimass-tenant';
// The servers' rule (libs/platform tenancy): one NATS subject token, so it can scope every key.
const TENANT_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export interface AiMassClientOptions {
  /** `host:port` of the fusion service (any grpc-js target works, e.g. `dns:///fusion:50051`). */
  address: string;
  /** The tenant every call is made for: 1-63 lower-case letters, digits and dashes. */
  tenant: string;
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string | undefined;
  /** TLS and friends (`credentials.createSsl(...)`); plaintext when omitted. */
  credentials?: ChannelCredentials | undefined;
  /** Deadline of a unary call that sets none, all retries included. Default 5000 ms. */
  defaultDeadlineMs?: number | undefined;
  /** Deadline of a prediction stream that sets none. Default 60000 ms. */
  defaultStreamDeadlineMs?: number | undefined;
  /** Retries of the calls safe to repeat (Predict, PredictBatch, Feedback); `false` turns them off. */
  retry?: RetryOptions | false | undefined;
  /** Told about each retry before its wait, e.g. to log it. */
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** Extra grpc-js channel options (keepalive, message size limits, …). */
  channelOptions?: ChannelOptions | undefined;
}

/** Per-call settings. */
export interface CallOptions {
  /** Time the call may take, retries included; the client's default when unset. */
  deadlineMs?: number | undefined;
  /** An absolute deadline instead (wins over `deadlineMs`), e.g. the one of the request you are serving. */
  deadline?: Date | number | undefined;
  /** Aborting it cancels the call (CancelledError). */
  signal?: AbortSignal | undefined;
  /** Extra metadata (e.g. a request id); cannot replace the tenant or the API key. */
  metadata?: Readonly<Record<string, string>> | undefined;
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

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<GrpcCallOptions>,
  callback: (err: ServiceError | null, response?: Res) => void,
) => ClientUnaryCall;

function cancelledError(): CancelledError {
  return new CancelledError('CANCELLED: cancelled by the caller', { grpcCode: Status.CANCELLED, details: 'cancelled by the caller' });
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
  return value;
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
  readonly #tenant: string;
  readonly #apiKey: string | undefined;
  readonly #deadlineMs: number;
  readonly #streamDeadlineMs: number;
  readonly #retry: ResolvedRetry;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;

  constructor(options: AiMassClientOptions) {
    if (typeof options.address !== 'string' || options.address === '') throw new TypeError('address is required, e.g. "127.0.0.1:50053"');
    if (!TENANT_ID_PATTERN.test(options.tenant ?? '')) {
      throw new TypeError(
        `invalid tenant ${JSON.stringify(String(options.tenant).slice(0, 80))}: use 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit`,
      );
    }
    if (options.apiKey !== undefined && (options.apiKey === '' || /[\r\n]/.test(options.apiKey))) {
      throw new TypeError('apiKey must be a non-empty single-line string');
    }
    this.#tenant = options.tenant;
    this.#apiKey = options.apiKey;
    this.#deadlineMs = positiveMs('defaultDeadlineMs', options.defaultDeadlineMs, 5_000);
    this.#streamDeadlineMs = positiveMs('defaultStreamDeadlineMs', options.defaultStreamDeadlineMs, 60_000);
    this.#retry = resolveRetry(options.retry);
    this.#onRetry = options.onRetry;
    this.#client = new v1.InferenceServiceClient(options.address, options.credentials ?? grpcCredentials.createInsecure(), {
      'grpc.primary_user_agent': `aimass-sdk-js/${SDK_VERSION}`,
      ...options.channelOptions,
    });
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
    const deadline = this.#deadlineOf(options, this.#streamDeadlineMs);
    const call = this.#client.predictStream(this.#metadata(options.metadata), { deadline });
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

  #deadlineOf(options: CallOptions, fallbackMs: number): number {
    if (options.deadline !== undefined) return options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
    return Date.now() + positiveMs('deadlineMs', options.deadlineMs, fallbackMs);
  }

  #metadata(extra: Readonly<Record<string, string>> | undefined): Metadata {
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(extra ?? {})) metadata.set(key, value);
    // Set last, so extra metadata cannot send the call to another tenant or with another key.
    metadata.set(TENANT_METADATA_KEY, this.#tenant);
    if (this.#apiKey !== undefined) metadata.set('authorization', `Bearer ${this.#apiKey}`);
    else metadata.remove('authorization');
    return metadata;
  }

  #unary<Req, Res>(rpc: string, method: UnaryMethod<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    const deadline = this.#deadlineOf(options, this.#deadlineMs);
    const metadata = this.#metadata(options.metadata);
    const { signal } = options;
    const attempt = () =>
      new Promise<Res>((resolve, reject) => {
        if (signal?.aborted) {
          reject(cancelledError());
          return;
        }
        const onAbort = () => call.cancel();
        const call = method.call(this.#client, request, metadata, { deadline }, (err, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(toAiMassError(err));
          else resolve(response as Res);
        });
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    return withRetry({ retry: this.#retry, deadline, signal, method: rpc, onRetry: this.#onRetry }, attempt);
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
