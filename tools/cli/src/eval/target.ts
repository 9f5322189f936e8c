import { InvalidArgumentError, type AiMassClient, type Input, type ItemResult, type Strategy, type TrainingAdminClient } from '@aimass/sdk';
import type { FusedStrategy } from '../args.js';
import { mailFromRfc822 } from '../mail.js';
import type { EvalMail } from './corpus.js';
import type { EvalTarget, MeasuredOutcome, MeasuredStrategy } from './prequential.js';
import { waitForTraining } from './settle.js';

export interface SdkTargetOptions {
  /** What "fused" means: the tenant's default strategy or a named one. */
  fusedStrategy: FusedStrategy;
  /** mail: subject, decoded body and headers (what a mail backend sends); raw: the message/rfc822 bytes. */
  input: 'mail' | 'raw';
  /** Held-out mails per PredictBatch call. Default 64. */
  batchSize?: number | undefined;
  /**
   * The updater that applies feedback after Feedback returns: checkpoints wait until it has
   * applied the user's feedback. Absent: Feedback trains before it returns, nothing to wait for.
   */
  training?: { client: Pick<TrainingAdminClient, 'trainingState'>; address: string; timeoutMs?: number | undefined } | undefined;
}

/** The EvalTarget over the public API, through the SDK: exactly what a customer's backend calls. */
export function sdkTarget(client: AiMassClient, options: SdkTargetOptions): EvalTarget {
  const inputs = new Map<string, Input>();
  const inputOf = (mail: EvalMail): Input => {
    let input = inputs.get(mail.key);
    if (input === undefined) {
      input =
        options.input === 'raw'
          ? { kind: { $case: 'raw', value: { data: Buffer.from(mail.raw, 'utf8'), contentType: 'message/rfc822' } } }
          : mailFromRfc822(mail.raw);
      inputs.set(mail.key, input);
    }
    return input;
  };
  const fused: Strategy | undefined = options.fusedStrategy === 'default' ? undefined : options.fusedStrategy;
  const strategyOf = (s: MeasuredStrategy): Strategy | undefined => (s === 'general' ? 'general' : s === 'personal' ? 'personal' : fused);
  const batchSize = options.batchSize ?? 64;
  const { training } = options;

  const measured = (r: ItemResult): MeasuredOutcome => {
    if (r.ok) {
      const { provenance } = r.prediction;
      return { label: r.prediction.label, fallbacks: provenance.fallbacks.map((f) => f.reason), applied: provenance.appliedStrategy };
    }
    if (r.error instanceof InvalidArgumentError) return { label: undefined, fallbacks: [], rejected: r.error.message };
    throw r.error;
  };

  return {
    async predict(userId, mail) {
      try {
        const p = await client.predict(userId, inputOf(mail), { strategy: fused });
        return { predictionId: p.predictionId, label: p.label };
      } catch (err) {
        if (err instanceof InvalidArgumentError) return { rejected: err.message };
        throw err;
      }
    },
    async predictMany(userId, mails, strategy) {
      const out: MeasuredOutcome[] = [];
      for (let start = 0; start < mails.length; start += batchSize) {
        const chunk = mails.slice(start, start + batchSize);
        const results = await client.predictBatch(
          chunk.map((mail) => ({ userId, input: inputOf(mail) })),
          { strategy: strategyOf(strategy) },
        );
        if (results.length !== chunk.length) throw new Error(`PredictBatch answered ${results.length} results for ${chunk.length} items`);
        out.push(...results.map(measured));
      }
      return out;
    },
    async feedback(userId, predictionId, label, idempotencyKey) {
      await client.feedback({ userId, predictionId, label, idempotencyKey });
    },
    ...(training && {
      settle: (userId: string, signal?: AbortSignal) =>
        waitForTraining(training.client, userId, { updater: training.address, timeoutMs: training.timeoutMs, signal }),
    }),
  };
}
