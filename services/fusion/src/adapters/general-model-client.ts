import type { Interceptor } from '@grpc/grpc-js';
import { CancelledError, DeadlineExceededError, InvalidArgumentError, UnavailableError, callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { Coalescer, type CoalescerStats, type SharedCall } from '../domain/coalescer.js';
import { inputBytes } from '../domain/validation.js';

export interface CallOptions {
  /** Absolute deadline (ms since epoch). */
  readonly deadline: number | undefined;
  /** The incoming call's signal: a cancelled Predict cancels its downstream calls. */
  readonly signal: AbortSignal;
}

/** The general model's answer for a batch of inputs, checked for shape. */
export interface GeneralAnswer {
  readonly model: v1.ModelRef;
  readonly labels: string[];
  readonly results: v1.ClassifyResult[];
}

/** The `fusion.coalescing` keys a client uses (absent or disabled: one downstream call per caller). */
export interface CoalescingOptions {
  readonly maxItems: number;
  readonly maxDelayMs: number;
  readonly maxRequestBytes: number;
}

export interface DownstreamClientOptions {
  readonly defaultDeadlineMs?: number | undefined;
  /** Coalesce concurrent calls; undefined: every caller makes its own call. */
  readonly coalescing?: CoalescingOptions | undefined;
  /** grpc-js client interceptors (after the platform's: deadline, tracing). */
  readonly interceptors?: readonly Interceptor[] | undefined;
}

/** Framing and field tags of one input in a Classify request, on top of its content bytes. */
const INPUT_OVERHEAD_BYTES = 64;

/** The key of a coalesced Classify: what makes two calls different (the tenant's metadata and the model asked for). */
function classifyKey(tenant: string, model: v1.ModelRef | undefined): string {
  return `${tenant}\n${model?.name ?? ''}\n${model?.version ?? ''}`;
}

interface ClassifyContext {
  readonly tenant: string;
  readonly model: v1.ModelRef | undefined;
}

interface ClassifyItem {
  readonly model: v1.ModelRef;
  readonly labels: string[];
  readonly result: v1.ClassifyResult;
}

/**
 * The general-model task API as fusion uses it: Classify with embedding and logits (the personal
 * model learns on both), on behalf of a tenant. Classify is read-only, so it is retried on
 * UNAVAILABLE within the caller's deadline.
 *
 * With coalescing, concurrent callers of one tenant asking for the same model share Classify
 * calls (see `Coalescer`): the general model batches rows internally anyway, so one call with many
 * inputs costs the gRPC overhead once instead of per caller. Each caller still gets exactly its
 * own answer, error, deadline and cancellation.
 */
export class GeneralModelClient {
  readonly #client: v1.GeneralModelServiceClient;
  readonly #coalescer: Coalescer<ClassifyContext, v1.InputPayload, ClassifyItem> | undefined;

  constructor(address: string, options: DownstreamClientOptions = {}) {
    this.#client = createClient(v1.GeneralModelServiceClient, {
      address,
      idempotentMethods: ['Classify'],
      defaultDeadlineMs: options.defaultDeadlineMs,
      retry: { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 200 },
      interceptors: options.interceptors,
    });
    const c = options.coalescing;
    this.#coalescer = c
      ? new Coalescer({
          maxItems: c.maxItems,
          maxDelayMs: c.maxDelayMs,
          maxWeight: c.maxRequestBytes,
          weightOf: (input: v1.InputPayload) => inputBytes(input) + INPUT_OVERHEAD_BYTES,
          run: async (ctx: ClassifyContext, inputs: v1.InputPayload[], call: SharedCall) => {
            const answer = await this.#classify(ctx.tenant, inputs, ctx.model, call);
            return answer.results.map((result) => ({ model: answer.model, labels: answer.labels, result }));
          },
          deadlineError: () => new DeadlineExceededError('deadline exceeded waiting for the general model'),
          cancelledError: () => new CancelledError('the call was cancelled'),
          // Fusion validates inputs first, so this is rare; alone, only the culprit fails.
          isolate: (err) => err instanceof InvalidArgumentError,
        })
      : undefined;
  }

  async classify(tenant: string, inputs: v1.InputPayload[], model: v1.ModelRef | undefined, options: CallOptions): Promise<GeneralAnswer> {
    if (!this.#coalescer) return this.#classify(tenant, inputs, model, options);
    const items = await this.#coalescer.submit(classifyKey(tenant, model), { tenant, model }, inputs, options);
    const first = items[0]!;
    return { model: first.model, labels: first.labels, results: items.map((i) => i.result) };
  }

  /** Counters of the coalescer (undefined when coalescing is off). */
  coalescingStats(): CoalescerStats | undefined {
    return this.#coalescer?.stats();
  }

  async #classify(tenant: string, inputs: v1.InputPayload[], model: v1.ModelRef | undefined, options: CallOptions): Promise<GeneralAnswer> {
    const res = await callUnary(
      this.#client.classify.bind(this.#client),
      { model, inputs, includeEmbedding: true, includeLogits: true },
      { deadline: options.deadline, signal: options.signal, metadata: tenantMetadata(tenant) },
    );
    const k = res.labels.length;
    // A general model fusion cannot read is a deployment problem, retryable once it is fixed.
    if (!res.model || k < 2 || res.results.length !== inputs.length || res.results.some((r) => r.probabilities.length !== k)) {
      throw new UnavailableError(
        `the general model answered in an unexpected shape (${k} labels, ${res.results.length} results for ${inputs.length} inputs): is it a classifier with labels?`,
      );
    }
    return { model: res.model, labels: res.labels, results: res.results };
  }

  close(): void {
    this.#client.close();
  }
}
