import type { Interceptor } from '@grpc/grpc-js';
import { UnavailableError, callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { describeGeneral, generalOutputOf, sameGeneral, servedVersion } from '../domain/general.js';
import type { GeneralRef } from '../domain/ids.js';

export interface GeneralModelClientOptions {
  /** Client interceptors (the updater's service token). */
  readonly interceptors?: readonly Interceptor[] | undefined;
  /** Deadline of each call. */
  readonly callTimeoutMs: number;
  /** Inputs per Classify call. */
  readonly classifyBatch: number;
}

/**
 * The general-model task API as the updater uses it: Classify (with embeddings and logits) to
 * re-embed a history on a general model version, ListModels to know the served version. Both are
 * read-only and retried on UNAVAILABLE.
 */
export class GeneralModelClient {
  readonly #client: v1.GeneralModelServiceClient;
  readonly #o: GeneralModelClientOptions;

  constructor(address: string, options: GeneralModelClientOptions) {
    this.#o = options;
    this.#client = createClient(v1.GeneralModelServiceClient, {
      address,
      idempotentMethods: ['Classify', 'ListModels'],
      defaultDeadlineMs: options.callTimeoutMs,
      retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 500 },
      maxReceiveMessageBytes: 64 * 1024 * 1024,
      interceptors: options.interceptors,
    });
  }

  /**
   * The general outputs of `inputs` on `model` (undefined: the general model's default), in
   * batches of `classifyBatch`. Every batch must be answered by the same version: a version that
   * changes in the middle would mix embeddings.
   */
  async classify(tenant: string, model: GeneralRef | undefined, inputs: readonly v1.InputPayload[]): Promise<{ model: GeneralRef; outputs: v1.GeneralOutput[] }> {
    let answered: GeneralRef | undefined = model;
    const outputs: v1.GeneralOutput[] = [];
    for (let start = 0; start < inputs.length; start += this.#o.classifyBatch) {
      const part = inputs.slice(start, start + this.#o.classifyBatch);
      const res = await callUnary(
        this.#client.classify.bind(this.#client),
        { model: answered, inputs: part, includeEmbedding: true, includeLogits: true },
        { deadline: Date.now() + this.#o.callTimeoutMs, metadata: tenantMetadata(tenant) },
      );
      const ref = res.model ? { name: res.model.name, version: res.model.version } : undefined;
      if (!ref || res.results.length !== part.length || (answered && !sameGeneral(ref, answered))) {
        throw new UnavailableError(
          `the general model answered ${describeGeneral(ref)} with ${res.results.length} results for ${part.length} inputs of ${describeGeneral(answered)}: is that version still loaded?`,
        );
      }
      answered = ref;
      for (const r of res.results) outputs.push(generalOutputOf(ref, r));
    }
    if (!answered) throw new UnavailableError('the general model did not say which version answered');
    return { model: answered, outputs };
  }

  /** Every model version the general model knows (all pages). */
  async listModels(): Promise<v1.GeneralModelInfo[]> {
    const out: v1.GeneralModelInfo[] = [];
    let pageToken = '';
    do {
      const res = await callUnary(this.#client.listModels.bind(this.#client), { page: { pageSize: 1000, pageToken } }, { deadline: Date.now() + this.#o.callTimeoutMs });
      out.push(...res.models);
      pageToken = res.nextPageToken;
    } while (pageToken !== '');
    return out;
  }

  /** The version of `name` (empty: the default model) a request naming no version gets now. */
  async served(name: string): Promise<GeneralRef | undefined> {
    return servedVersion(await this.listModels(), name);
  }

  close(): void {
    this.#client.close();
  }
}
