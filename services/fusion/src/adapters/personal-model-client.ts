import { CancelledError, DeadlineExceededError, DomainError, InvalidArgumentError, NotFoundError, callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { CircuitBreaker } from '../domain/circuit-breaker.js';
import { Coalescer, type CoalescerStats, type SharedCall } from '../domain/coalescer.js';
import type { CallOptions, DownstreamClientOptions } from './general-model-client.js';

/** One item for the personal stage. */
export interface PersonalScoreItem {
  readonly itemId: string;
  readonly userPseudonym: string;
  readonly general: v1.GeneralOutput;
  /**
   * The item's sparse features. Computing them (parsing the mail, tokens, hashing) is the costly
   * part of the stage, so it is done only for an item that is really sent to Score.
   */
  readonly features: () => v1.SparseVector;
}

/** The personal stage's answer for one item (the caller turns all but a scored result into a fallback). */
export type ItemScore =
  /** Score answered for the item: OK, NO_MODEL or GENERAL_VERSION_MISMATCH. */
  | { readonly kind: 'answered'; readonly result: v1.ScoreResult }
  /** The Score call carrying the item failed or did not answer within its deadline. */
  | { readonly kind: 'failed'; readonly timeout: boolean; readonly detail: string }
  /** Not sent: the circuit breaker is open after repeated failures. */
  | { readonly kind: 'circuit_open'; readonly detail: string }
  /** Not sent: the user's consent does not allow the personal model, or could not be verified. */
  | { readonly kind: 'withheld'; readonly detail: string };

/**
 * The personal model as the Predictor sees it. `PersonalModelClient` implements it; policies wrap
 * it behind the same interface (`ConsentCheckingPersonalModel`).
 */
export interface PersonalScorer {
  /** One answer per item, in the items' order, within `options.deadline`. Never rejects. */
  score(tenant: string, items: readonly PersonalScoreItem[], options: CallOptions): Promise<ItemScore[]>;
}

export interface PersonalModelClientOptions extends DownstreamClientOptions {
  /**
   * Skips Score (`circuit_open`) while the personal model keeps failing. Every call that is sent
   * reports to it, so items that are never sent (withheld by consent) cannot open or close it.
   */
  readonly breaker?: CircuitBreaker | undefined;
}

/** Score's outcome for a whole call. */
type CallOutcome = { readonly ok: true; readonly results: v1.ScoreResult[] } | { readonly ok: false; readonly timeout: boolean; readonly detail: string };

/** Score answered, but not one result per item: nothing in it can be matched to an item. */
class ScoreShapeError extends Error {}

/**
 * An upper bound of one item's bytes in a Score request (varint indices ≤ 5 bytes + float
 * values, floats of the general output, strings, framing), to keep shared calls well under the
 * personal model's message limit.
 */
export function scoreItemBytes(item: v1.ScoreItem): number {
  const g = item.general;
  const floats = g ? g.logits.length + g.probabilities.length + g.embedding.length : 0;
  const model = g?.model ? g.model.name.length + g.model.version.length : 0;
  return 64 + item.itemId.length + item.userPseudonym.length + model + 4 * floats + 9 * (item.sparseFeatures?.indices.length ?? 0);
}

function describe(err: unknown): string {
  if (err instanceof DomainError) return `${err.kind.toUpperCase()}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The personal-model service as fusion uses it. Score never throws: a slow or failing personal
 * model is a normal outcome that Predict reports as a fallback, and behind the circuit breaker
 * an outage costs nothing per request after a few failures. Train and GetModel throw domain
 * errors, which Feedback passes on (a failed training must not be acknowledged).
 */
export class PersonalModelClient implements PersonalScorer {
  readonly #client: v1.PersonalModelServiceClient;
  readonly #coalescer: Coalescer<string, v1.ScoreItem, v1.ScoreResult> | undefined;
  readonly #breaker: CircuitBreaker | undefined;

  constructor(address: string, options: PersonalModelClientOptions = {}) {
    this.#breaker = options.breaker;
    this.#client = createClient(v1.PersonalModelServiceClient, {
      address,
      // Train carries an idempotency key, so a retry cannot apply an example twice.
      idempotentMethods: ['Score', 'GetModel', 'Train'],
      defaultDeadlineMs: options.defaultDeadlineMs,
      retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 50 },
      interceptors: options.interceptors,
    });
    const c = options.coalescing;
    this.#coalescer = c
      ? new Coalescer({
          maxItems: c.maxItems,
          maxDelayMs: c.maxDelayMs,
          maxWeight: c.maxRequestBytes,
          weightOf: scoreItemBytes,
          // Callers number their items from 0; in a shared call the position is the id.
          run: (tenant: string, items: v1.ScoreItem[], call: SharedCall) =>
            this.#score(
              tenant,
              items.map((item, i) => ({ ...item, itemId: String(i) })),
              call,
            ),
          deadlineError: () => new DeadlineExceededError('deadline exceeded waiting for the personal model'),
          cancelledError: () => new CancelledError('the call was cancelled'),
          // Score rejects a whole request for one malformed item; alone, only that caller falls back.
          isolate: (err) => err instanceof InvalidArgumentError,
        })
      : undefined;
  }

  /**
   * Scores items within `options.deadline` (the personal stage's sub-deadline). With coalescing,
   * concurrent callers of one tenant share Score calls; each still gets its own outcome.
   */
  async score(tenant: string, items: readonly PersonalScoreItem[], options: CallOptions): Promise<ItemScore[]> {
    if (items.length === 0) return [];
    const breaker = this.#breaker;
    if (breaker && !breaker.allow()) {
      const detail = `personal model skipped after repeated failures; next try in ${breaker.retryInMs()} ms`;
      return items.map(() => ({ kind: 'circuit_open', detail }));
    }
    const request = items.map((item): v1.ScoreItem => ({ itemId: item.itemId, userPseudonym: item.userPseudonym, general: item.general, sparseFeatures: item.features() }));
    const outcome = await this.#call(tenant, request, options);
    if (!outcome.ok) {
      breaker?.failure();
      return items.map(() => ({ kind: 'failed', timeout: outcome.timeout, detail: outcome.detail }));
    }
    breaker?.success();
    return outcome.results.map((result) => ({ kind: 'answered', result }));
  }

  async #call(tenant: string, items: v1.ScoreItem[], options: CallOptions): Promise<CallOutcome> {
    try {
      if (!this.#coalescer) return { ok: true, results: await this.#score(tenant, items, options) };
      const results = await this.#coalescer.submit(tenant, tenant, items, options);
      return { ok: true, results: results.map((r, i) => ({ ...r, itemId: items[i]!.itemId })) };
    } catch (err) {
      if (err instanceof ScoreShapeError) return { ok: false, timeout: false, detail: err.message };
      const timeout = err instanceof DeadlineExceededError;
      return { ok: false, timeout, detail: timeout ? 'personal model did not answer within its share of the deadline' : `personal model failed: ${describe(err)}` };
    }
  }

  /** Counters of the coalescer (undefined when coalescing is off). */
  coalescingStats(): CoalescerStats | undefined {
    return this.#coalescer?.stats();
  }

  async #score(tenant: string, items: v1.ScoreItem[], options: CallOptions | SharedCall): Promise<v1.ScoreResult[]> {
    const res = await callUnary(this.#client.score.bind(this.#client), { items }, { deadline: options.deadline, signal: options.signal, metadata: tenantMetadata(tenant) });
    if (res.results.length !== items.length) throw new ScoreShapeError(`personal model answered ${res.results.length} results for ${items.length} items`);
    return res.results;
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
