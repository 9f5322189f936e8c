import type { Interceptor } from '@grpc/grpc-js';
import { NotFoundError, callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { ModelView } from '../domain/examples.js';
import { NO_MODEL } from '../domain/examples.js';

export interface PersonalModelState extends ModelView {
  readonly exampleCount: number;
  /** When the current version was written; undefined without a model. */
  readonly writtenAt: Date | undefined;
}

export interface PersonalModelClientOptions {
  /** Client interceptors (the updater's service token). */
  readonly interceptors?: readonly Interceptor[] | undefined;
  /** Deadline of each call. */
  readonly callTimeoutMs: number;
}

/**
 * The personal-model service as the updater uses it. Train and Refit carry idempotency keys and
 * are compare-and-set writes, so repeating them (grpc-js retries on UNAVAILABLE, the applier's
 * own retries) never applies anything twice; DeleteUser deletes what is there, again and again.
 */
export class PersonalModelClient {
  readonly #client: v1.PersonalModelServiceClient;
  readonly #timeoutMs: number;

  constructor(address: string, options: PersonalModelClientOptions) {
    this.#timeoutMs = options.callTimeoutMs;
    this.#client = createClient(v1.PersonalModelServiceClient, {
      address,
      idempotentMethods: ['GetModel', 'Train', 'Refit', 'DeleteUser'],
      defaultDeadlineMs: options.callTimeoutMs,
      retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 500 },
      // A refit carries a user's whole history.
      maxSendMessageBytes: 64 * 1024 * 1024,
      interceptors: options.interceptors,
    });
  }

  #options(tenant: string) {
    return { deadline: Date.now() + this.#timeoutMs, metadata: tenantMetadata(tenant) };
  }

  /** The user's current model; `NO_MODEL` (version 0, watermark 0) when there is none. */
  async model(tenant: string, userPseudonym: string): Promise<PersonalModelState> {
    try {
      const res = await callUnary(this.#client.getModel.bind(this.#client), { userPseudonym, version: 0, includeParameters: false }, this.#options(tenant));
      const m = res.model;
      if (!m) return { ...NO_MODEL, exampleCount: 0, writtenAt: undefined };
      return {
        version: m.version,
        general: m.generalModel ? { name: m.generalModel.name, version: m.generalModel.version } : undefined,
        watermark: m.lastAppliedSequence,
        exampleCount: m.exampleCount,
        writtenAt: m.createdAt,
      };
    } catch (err) {
      if (err instanceof NotFoundError) return { ...NO_MODEL, exampleCount: 0, writtenAt: undefined };
      throw err;
    }
  }

  train(tenant: string, request: v1.TrainRequest): Promise<v1.TrainResponse> {
    return callUnary(this.#client.train.bind(this.#client), request, this.#options(tenant));
  }

  refit(tenant: string, request: v1.RefitRequest): Promise<v1.RefitResponse> {
    return callUnary(this.#client.refit.bind(this.#client), request, this.#options(tenant));
  }

  /** Deletes every version and cached copy of the user's model (an erasure); 0 when there was none. */
  async deleteUser(tenant: string, userPseudonym: string, erasureId: string): Promise<number> {
    const res = await callUnary(this.#client.deleteUser.bind(this.#client), { userPseudonym, erasureId }, this.#options(tenant));
    return res.deletedVersions;
  }

  close(): void {
    this.#client.close();
  }
}
