import { DeadlineExceededError, DomainError, NotFoundError, callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { CallOptions } from './general-model-client.js';

/** Score's outcome: results, or why there are none (the caller turns that into a fallback). */
export type ScoreOutcome =
  | { readonly ok: true; readonly results: v1.ScoreResult[] }
  | { readonly ok: false; readonly timeout: boolean; readonly detail: string };

function describe(err: unknown): string {
  if (err instanceof DomainError) return `${err.kind.toUpperCase()}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The personal-model service as fusion uses it. Score never throws: a slow or failing personal
 * model is a normal outcome that Predict reports as a fallback. Train and GetModel throw domain
 * errors, which Feedback passes on (a failed training must not be acknowledged).
 */
export class PersonalModelClient {
  readonly #client: v1.PersonalModelServiceClient;

  constructor(address: string, options: { defaultDeadlineMs?: number | undefined } = {}) {
    this.#client = createClient(v1.PersonalModelServiceClient, {
      address,
      // Train carries an idempotency key, so a retry cannot apply an example twice.
      idempotentMethods: ['Score', 'GetModel', 'Train'],
      defaultDeadlineMs: options.defaultDeadlineMs,
      retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 50 },
    });
  }

  /** Scores items within `options.deadline` (the personal stage's sub-deadline). */
  async score(tenant: string, items: v1.ScoreItem[], options: CallOptions): Promise<ScoreOutcome> {
    try {
      const res = await callUnary(this.#client.score.bind(this.#client), { items }, { deadline: options.deadline, signal: options.signal, metadata: tenantMetadata(tenant) });
      if (res.results.length !== items.length) {
        return { ok: false, timeout: false, detail: `personal model answered ${res.results.length} results for ${items.length} items` };
      }
      return { ok: true, results: res.results };
    } catch (err) {
      const timeout = err instanceof DeadlineExceededError;
      return { ok: false, timeout, detail: timeout ? 'personal model did not answer within its share of the deadline' : `personal model failed: ${describe(err)}` };
    }
  }

  async train(tenant: string, request: v1.TrainRequest, options: CallOptions): Promise<v1.TrainResponse> {
    return callUnary(this.#client.train.bind(this.#client), request, { deadline: options.deadline, signal: options.signal, metadata: tenantMetadata(tenant) });
  }

  /** The user's current model version; 0 when the user has none. */
  async currentVersion(tenant: string, userPseudonym: string, options: CallOptions): Promise<number> {
    try {
      const res = await callUnary(
        this.#client.getModel.bind(this.#client),
        { userPseudonym, version: 0, includeParameters: false },
        { deadline: options.deadline, signal: options.signal, metadata: tenantMetadata(tenant) },
      );
      return res.model?.version ?? 0;
    } catch (err) {
      if (err instanceof NotFoundError) return 0;
      throw err;
    }
  }

  close(): void {
    this.#client.close();
  }
}
