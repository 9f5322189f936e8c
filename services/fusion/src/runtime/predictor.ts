import { DeadlineExceededError, DomainError, InternalError, fromGrpcError, type Logger, type Pseudonymizer } from '@aimass/platform';
import type { PersonalFeaturizer } from '@aimass/ml';
import { v1 } from '@aimass/proto';
import type { GeneralAnswer, GeneralModelClient } from '../adapters/general-model-client.js';
import type { ItemScore, PersonalScorer } from '../adapters/personal-model-client.js';
import type { PredictionRecord, PredictionRecordStore } from '../adapters/prediction-records.js';
import type { KnownTenants } from '../adapters/records.js';
import { admit, generalDeadline, personalBudget, type BudgetConfig } from '../domain/budget.js';
import type { NoModelCache } from '../domain/no-model-cache.js';
import { fuse, type FusionOutcome, type GeneralComponent, type PersonalOutcome } from '../domain/fusion.js';
import { newPredictionId } from '../domain/ids.js';
import { argmax, generalLogits } from '../domain/logits.js';
import { personalFeatures } from '../domain/personal-input.js';
import { StageTimer, buildProvenance } from '../domain/provenance.js';
import { needsPersonal, requestedStrategy, type FusionPolicy } from '../domain/strategy.js';
import { fieldPath, validateInput, validateKey, validateUserId, type InputLimits } from '../domain/validation.js';

const { Stage, ScoreStatus } = v1;


const RECORDS_NOT_STORED = 'could not store prediction records: feedback by prediction id will not find them';
/** One input to predict, from any of the three RPCs. */
export interface PredictItem {
  readonly itemId: string;
  readonly userId: string;
  readonly input: v1.InputPayload | undefined;
  readonly options: v1.PredictOptions | undefined;
  /** Where the item sits in the request, for error messages: '' for Predict, `items[3]` for a batch. */
  readonly field: string;
}

export type ItemOutcome = { readonly ok: true; readonly prediction: v1.Prediction } | { readonly ok: false; readonly error: DomainError };

/** What a prediction call runs under: the incoming call's deadline and cancellation, and its logger. */
export interface PredictContext {
  readonly deadline: Date | undefined;
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

export interface PredictorOptions {
  readonly general: GeneralModelClient;
  /**
   * The personal model: the client (with its circuit breaker), or a policy wrapped around it
   * (consent enforcement), which answers withheld items without asking Score.
   */
  readonly personal: PersonalScorer;
  /** Where records go: sealed with the users' keys, behind their training consent when enforced. */
  readonly records: PredictionRecordStore;
  /**
   * The longest the records' wait (a consent lookup, a user's key) may hold the answer back; the
   * call's deadline may end it sooner. Undefined: only the deadline.
   */
  readonly recordWaitMs?: number | undefined;
  readonly tenants: KnownTenants;
  readonly featurizer: PersonalFeaturizer;
  readonly pseudonymizer: Pseudonymizer;
  /**
   * Users known to have no personal model: their Predicts skip the personal features and the
   * Score call. Undefined: every Predict that consults the personal model asks Score.
   */
  readonly noModelCache?: NoModelCache | undefined;
  /** The policy of a tenant (defaults with its overrides). */
  readonly policyOf: (tenant: string) => FusionPolicy;
  readonly budget: BudgetConfig;
  readonly limits: InputLimits;
  /** The tenant's general model, asked for when a request pins none ('' for the service's default). */
  readonly generalModelOf: (tenant: string) => string;
  /** Deadline used when the incoming call has none. */
  readonly defaultDeadlineMs: number;
}

interface Admitted {
  readonly index: number;
  readonly item: PredictItem;
  readonly input: v1.InputPayload;
  readonly pseudonym: string;
  readonly strategy: v1.FusionStrategy;
  readonly policy: FusionPolicy;
  readonly modelKey: string;
  readonly modelRef: v1.ModelRef | undefined;
  general?: GeneralComponent & { readonly embedding: number[]; readonly output: v1.GeneralOutput };
  /** Computed only for Score; a record without them is featurized from its input if Feedback names it. */
  sparse?: v1.SparseVector;
  personal?: PersonalOutcome;
}

/** Any thrown value as a domain error (a raw gRPC error keeps its status). */
export function toDomainError(err: unknown): DomainError {
  return err instanceof DomainError ? err : fromGrpcError(err);
}

/** The general model to ask for: the request's pin (name defaulting to the tenant's), else the tenant's (stored, else configured), else the service's default. */
function generalModelRef(pinned: v1.ModelRef | undefined, defaultName: string): v1.ModelRef | undefined {
  if (pinned && (pinned.name !== '' || pinned.version !== '')) return { name: pinned.name || defaultName, version: pinned.version };
  return defaultName ? { name: defaultName, version: '' } : undefined;
}

function topK(probabilities: readonly number[], labels: readonly string[], k: number): v1.ClassProbability[] {
  const all = probabilities.map((probability, index) => ({ label: labels[index] ?? String(index), index, probability }));
  if (k <= 0 || k >= all.length) return all;
  return [...all].sort((a, b) => b.probability - a.probability || a.index - b.index).slice(0, k);
}

function component(model: v1.ModelRef, labels: readonly string[], probabilities: readonly number[]): v1.ComponentResult {
  const best = argmax(probabilities);
  return { model: { ...model }, label: labels[best] ?? String(best), probabilities: topK(probabilities, labels, 0) };
}

/**
 * The prediction pipeline shared by Predict, PredictBatch and PredictStream: admission, one general
 * model call for all items (per pinned model), one personal Score call for all items that need it
 * within its share of the deadline (users known to have no model are answered NO_MODEL without
 * it), fusion per item, and one write of the prediction records.
 * Items fail independently; a failure of the whole call (deadline too short) throws. The clients
 * may share these calls with concurrent requests (request coalescing, in the adapters); that is
 * invisible here: each call still resolves with this request's own results, error or timeout, and
 * the stage timers include the wait.
 */
export class Predictor {
  readonly #o: PredictorOptions;

  constructor(options: PredictorOptions) {
    this.#o = options;
  }

  async predict(tenant: string, items: readonly PredictItem[], ctx: PredictContext): Promise<ItemOutcome[]> {
    const o = this.#o;
    const timer = new StageTimer();
    const deadline = ctx.deadline?.getTime() ?? Date.now() + o.defaultDeadlineMs;
    const requestMs = Math.max(0, Math.round(deadline - Date.now()));
    const outcomes: (ItemOutcome | undefined)[] = new Array(items.length).fill(undefined);
    const fail = (index: number, err: unknown) => {
      outcomes[index] = { ok: false, error: toDomainError(err) };
    };

    // Admission: deadline, then each item on its own.
    const admitted: Admitted[] = [];
    await timer.time(Stage.STAGE_ADMISSION, () => {
      admit(deadline - Date.now(), o.budget);
      const policy = o.policyOf(tenant);
      const generalModel = o.generalModelOf(tenant);
      items.forEach((item, index) => {
        try {
          validateKey(item.itemId, fieldPath(item.field, 'item_id'), o.limits);
          validateUserId(item.userId, item.field, o.limits);
          const input = validateInput(item.input, item.field, o.limits);
          const strategy = requestedStrategy(item.options?.strategy, policy.strategy, fieldPath(item.field, 'options.strategy'));
          const modelRef = generalModelRef(item.options?.generalModel, generalModel);
          // The raw user id stops here: everything below sees the pseudonym only.
          const pseudonym = o.pseudonymizer.pseudonymize(tenant, item.userId);
          admitted.push({ index, item, input, pseudonym, strategy, policy, modelKey: modelRef ? `${modelRef.name}:${modelRef.version}` : '', modelRef });
        } catch (err) {
          fail(index, err);
        }
      });
    });
    if (admitted.length === 0) return outcomes as ItemOutcome[];
    // The users' keys are fetched (when not held) while the models answer, so the records' sealing
    // at the end rarely waits.
    o.records.warm(
      tenant,
      admitted.map((a) => a.pseudonym),
    );

    // General model: one call per pinned model (usually one for the whole request).
    await timer.time(Stage.STAGE_GENERAL_MODEL, async () => {
      const groups = new Map<string, Admitted[]>();
      for (const a of admitted) {
        const group = groups.get(a.modelKey);
        if (group) group.push(a);
        else groups.set(a.modelKey, [a]);
      }
      await Promise.all(
        [...groups.values()].map(async (group) => {
          let answer: GeneralAnswer;
          try {
            answer = await o.general.classify(
              tenant,
              group.map((a) => a.input),
              group[0]!.modelRef,
              { deadline: generalDeadline(deadline, o.budget), signal: ctx.signal },
            );
          } catch (err) {
            const error =
              err instanceof DeadlineExceededError
                ? new DeadlineExceededError(
                    `the general model did not answer within the request's deadline (${requestMs} ms left on arrival): set a longer deadline`,
                    { cause: err },
                  )
                : toDomainError(err);
            for (const a of group) fail(a.index, error);
            return;
          }
          group.forEach((a, i) => {
            const r = answer.results[i]!;
            const logits = generalLogits(r.logits, r.probabilities);
            a.general = {
              model: answer.model,
              labels: answer.labels,
              logits,
              probabilities: r.probabilities,
              embedding: r.embedding,
              output: { model: answer.model, logits, probabilities: r.probabilities, embedding: r.embedding },
            };
          });
        }),
      );
    });
    const answered = admitted.filter((a) => a.general !== undefined);
    if (answered.length === 0) return outcomes as ItemOutcome[];

    // Personal model: one Score call for the items whose strategy consults it, except users known
    // to have none (Score would answer NO_MODEL again: the answer is the same without the call).
    const scoring: Admitted[] = [];
    for (const a of answered) {
      if (!needsPersonal(a.strategy)) a.personal = { kind: 'not_consulted' };
      else if (o.noModelCache?.has(tenant, a.pseudonym)) a.personal = { kind: 'no_model', cached: true };
      else scoring.push(a);
    }
    if (scoring.length > 0) await timer.time(Stage.STAGE_PERSONAL_MODEL, () => this.#scorePersonal(tenant, scoring, deadline, ctx));

    // Fusion, records, answers.
    const predictions: { a: Admitted; outcome: FusionOutcome; id: string }[] = [];
    await timer.time(Stage.STAGE_FUSION, async () => {
      for (const a of answered) {
        try {
          predictions.push({ a, outcome: fuse(a.general!, a.personal!, a.strategy, a.policy), id: newPredictionId() });
        } catch (err) {
          fail(a.index, new InternalError('fusion failed', { cause: err }));
        }
      }
      await this.#saveRecords(tenant, predictions, deadline, ctx.logger);
    });

    const durations = timer.snapshot();
    for (const { a, outcome, id } of predictions) {
      const g = a.general!;
      const opts = a.item.options;
      outcomes[a.index] = {
        ok: true,
        prediction: {
          predictionId: id,
          label: outcome.label,
          probabilities: topK(outcome.probabilities, g.labels, opts?.topK ?? 0),
          provenance: buildProvenance(g.model, outcome, durations),
          embedding: opts?.includeEmbedding ? g.embedding : [],
          general: opts?.includeComponents ? component(g.model, g.labels, g.probabilities) : undefined,
          personal: opts?.includeComponents && outcome.personal ? component(outcome.personal.model, g.labels, outcome.personal.probabilities) : undefined,
        },
      };
    }
    return outcomes as ItemOutcome[];
  }

  async #scorePersonal(tenant: string, items: Admitted[], deadline: number, ctx: PredictContext): Promise<void> {
    const o = this.#o;
    const set = (personal: PersonalOutcome) => {
      for (const a of items) a.personal = personal;
    };
    const budget = personalBudget(deadline - Date.now(), o.budget);
    if (!budget.ok) return set({ kind: 'timeout', detail: budget.detail });
    const personalDeadline = Date.now() + budget.ms;
    // Before the call: a model announced while it is out must not be hidden by its NO_MODEL answer.
    const ticket = o.noModelCache?.ticket();
    const answers = await o.personal.score(
      tenant,
      items.map((a, i) => ({
        itemId: String(i),
        userPseudonym: a.pseudonym,
        general: a.general!.output,
        // Kept for the record, so Feedback on the prediction trains on exactly what was scored.
        features: () => (a.sparse ??= personalFeatures(o.featurizer, a.input)),
      })),
      { deadline: personalDeadline, signal: ctx.signal },
    );
    let failed: Extract<ItemScore, { kind: 'failed' }> | undefined;
    let failedItems = 0;
    items.forEach((a, i) => {
      const answer = answers[i]!;
      switch (answer.kind) {
        case 'withheld':
          // Not a NO_MODEL answer: nothing is remembered, so a grant takes effect at the next Predict.
          a.personal = { kind: 'no_consent', detail: answer.detail };
          return;
        case 'circuit_open':
          a.personal = { kind: 'circuit_open', detail: answer.detail };
          return;
        case 'failed':
          failed = answer;
          failedItems++;
          a.personal = answer.timeout ? { kind: 'timeout', detail: `${answer.detail} (${budget.ms} ms)` } : { kind: 'error', detail: answer.detail };
          return;
        case 'answered':
          break;
      }
      const r = answer.result;
      switch (r.status) {
        case ScoreStatus.SCORE_STATUS_OK:
          a.personal = {
            kind: 'scored',
            model: r.model ?? { name: 'personal', version: '' },
            logits: r.logits,
            probabilities: r.probabilities,
            correction: r.correctionLogits,
            exampleCount: r.exampleCount,
          };
          break;
        case ScoreStatus.SCORE_STATUS_NO_MODEL:
          a.personal = { kind: 'no_model' };
          if (ticket) o.noModelCache!.remember(tenant, a.pseudonym, ticket);
          break;
        case ScoreStatus.SCORE_STATUS_GENERAL_VERSION_MISMATCH:
          a.personal = { kind: 'version_mismatch', model: r.model, paired: r.pairedGeneralModel };
          break;
        default:
          a.personal = { kind: 'error', detail: `personal model answered status ${r.status} for an item` };
      }
    });
    if (failed) ctx.logger.warn({ timeout: failed.timeout, detail: failed.detail, items: failedItems }, 'personal model unusable: answering with the general model');
  }

  /**
   * Keeps each prediction's input, general output and (when computed) features, sealed with the
   * user's key, so Feedback can name it by id. Written before the answer (Feedback may name the
   * prediction right after it), but never at the prediction's expense: a record whose key is still
   * coming after `recordWaitMs` (or at the deadline) is written when it comes, after the answer
   * (Feedback by its id waits for it); one that cannot be kept (no training consent, the key's
   * fetch failed, the store down) is left out, and Feedback on that id answers NOT_FOUND (or says
   * why consent is missing); feedback with the input itself still works.
   */
  async #saveRecords(tenant: string, predictions: readonly { a: Admitted; outcome: FusionOutcome; id: string }[], deadline: number, logger: Logger): Promise<void> {
    if (predictions.length === 0) return;
    const o = this.#o;
    const records: PredictionRecord[] = predictions.map(({ a, outcome, id }) => ({
      predictionId: id,
      userPseudonym: a.pseudonym,
      input: a.input,
      general: a.general!.output,
      labels: a.general!.labels,
      sparse: a.sparse,
      label: outcome.label,
    }));
    const waitUntil = Math.min(deadline - o.budget.reserveMs, o.recordWaitMs === undefined ? Infinity : Date.now() + o.recordWaitMs);
    try {
      await o.tenants.remember(tenant);
      const saved = await o.records.save(tenant, records, { deadline: waitUntil });
      if (saved.keyUnavailable > 0) {
        logger.warn(
          { err: saved.keyError, tenant, predictions: records.length, notStored: saved.keyUnavailable },
          "prediction records not stored: the users' data keys could not be had in time; feedback by those prediction ids will answer NOT_FOUND",
        );
      }
      // Not awaited: the answer goes now, the records follow when their keys come.
      void saved.late?.then((late) => {
        if (late.keyUnavailable > 0) {
          logger.warn(
            { err: late.keyError, tenant, notStored: late.keyUnavailable },
            "prediction records not stored: the users' data keys did not come after the answer either; feedback by those prediction ids will answer NOT_FOUND",
          );
        }
        if (late.storeError !== undefined) logger.error({ err: late.storeError, tenant }, RECORDS_NOT_STORED);
      });
    } catch (err) {
      logger.error({ err, tenant, predictions: records.length }, RECORDS_NOT_STORED);
    }
  }
}
