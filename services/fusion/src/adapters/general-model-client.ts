import { UnavailableError, callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';

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

/**
 * The general-model task API as fusion uses it: Classify with embedding and logits (the personal
 * model learns on both), on behalf of a tenant. Classify is read-only, so it is retried on
 * UNAVAILABLE within the caller's deadline.
 */
export class GeneralModelClient {
  readonly #client: v1.GeneralModelServiceClient;

  constructor(address: string, options: { defaultDeadlineMs?: number | undefined } = {}) {
    this.#client = createClient(v1.GeneralModelServiceClient, {
      address,
      idempotentMethods: ['Classify'],
      defaultDeadlineMs: options.defaultDeadlineMs,
      retry: { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 200 },
    });
  }

  async classify(tenant: string, inputs: v1.InputPayload[], model: v1.ModelRef | undefined, options: CallOptions): Promise<GeneralAnswer> {
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
