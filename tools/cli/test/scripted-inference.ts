import { createGrpcServer, createLogger, InvalidArgumentError, NotFoundError, tenantFromMetadata, unary, type GrpcServer } from '@aimass/platform';
import { v1 } from '@aimass/proto';

/**
 * A scripted InferenceService for the CLI's plumbing (arguments → SDK → gRPC → output, exit
 * codes, the evaluation's loop and report). It is not a model and says nothing about quality:
 * its "general model" calls an input spam when it contains the word SPAMWORD, and its "personal
 * model" remembers the label a user last gave a sender (its List-Id, else its From domain).
 * Real quality is measured against fusion by `aimass eval personalization --address`.
 */
export interface ScriptedInference {
  readonly address: string;
  readonly requests: { method: string; tenant: string; body: unknown }[];
  /** When false, feedback is accepted but nothing is remembered (a platform that does not learn). */
  learn: boolean;
  stop(): void;
}

const S = v1.FusionStrategy;

function senderOf(input: v1.InputPayload | undefined): string {
  const kind = input?.kind;
  if (kind?.$case !== 'mail') return '';
  const h = kind.value.headers;
  const list = h['list-id']?.match(/<([^>]+)>/)?.[1];
  if (list) return `list:${list}`;
  return `from:${h.from?.match(/@([\w.-]+)/)?.[1] ?? ''}`;
}

function textOf(input: v1.InputPayload | undefined): string {
  const kind = input?.kind;
  if (kind?.$case === 'text') return kind.value;
  if (kind?.$case === 'mail') return `${kind.value.subject}\n${kind.value.body}`;
  return '';
}

export async function startScriptedInference(): Promise<ScriptedInference> {
  const requests: ScriptedInference['requests'] = [];
  const memory = new Map<string, string>();
  const predictions = new Map<string, { user: string; sender: string }>();
  const feedbackKeys = new Map<string, string>();
  const state = { learn: true };
  let next = 0;

  const predictOne = (tenant: string, user: string, input: v1.InputPayload | undefined, options: v1.PredictOptions | undefined): v1.Prediction => {
    const text = textOf(input);
    if (text.trim() === '') throw new InvalidArgumentError('input is empty: set text or mail', { field: 'input' });
    const general = /SPAMWORD/.test(text) ? 'spam' : 'ham';
    const sender = senderOf(input);
    const learned = memory.get(`${tenant}/${user}/${sender}`);
    const requested = options?.strategy ?? S.FUSION_STRATEGY_UNSPECIFIED;
    const usePersonal = requested !== S.FUSION_STRATEGY_GENERAL_ONLY && learned !== undefined;
    const label = usePersonal ? learned : general;
    const predictionId = `p-${++next}`;
    predictions.set(predictionId, { user: `${tenant}/${user}`, sender });
    const spam = label === 'spam' ? 0.9 : 0.1;
    return {
      predictionId,
      label,
      probabilities: [
        { label: 'ham', index: 0, probability: 1 - spam },
        { label: 'spam', index: 1, probability: spam },
      ],
      provenance: {
        models: [{ model: { name: 'general', version: '1' }, role: v1.ModelRole.MODEL_ROLE_GENERAL, weight: usePersonal ? 0 : 1 }],
        requestedStrategy: requested,
        appliedStrategy: usePersonal ? S.FUSION_STRATEGY_OVERRIDE : S.FUSION_STRATEGY_GENERAL_ONLY,
        fallbacks:
          requested !== S.FUSION_STRATEGY_GENERAL_ONLY && !usePersonal
            ? [{ reason: v1.FallbackReason.FALLBACK_REASON_NO_PERSONAL_MODEL, role: v1.ModelRole.MODEL_ROLE_PERSONAL, detail: 'nothing learned for this sender' }]
            : [],
        timings: [{ stage: v1.Stage.STAGE_TOTAL, duration: { seconds: 0, nanos: 1_500_000 } }],
      },
      embedding: [],
      general: undefined,
      personal: undefined,
    };
  };

  const implementation: v1.InferenceServiceServer = {
    predict: unary<v1.PredictRequest, v1.PredictResponse>((req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      requests.push({ method: 'Predict', tenant, body: req });
      return { prediction: predictOne(tenant, req.userId, req.input, req.options) };
    }),
    predictBatch: unary<v1.PredictBatchRequest, v1.PredictBatchResponse>((req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      requests.push({ method: 'PredictBatch', tenant, body: req });
      return {
        results: req.items.map((item) => {
          try {
            return { itemId: item.itemId, outcome: { $case: 'prediction', value: predictOne(tenant, item.userId, item.input, req.options) } };
          } catch (err) {
            return { itemId: item.itemId, outcome: { $case: 'error', value: { code: 3, message: (err as Error).message } } };
          }
        }),
      };
    }),
    predictStream: (call) => call.end(),
    feedback: unary<v1.FeedbackRequest, v1.FeedbackResponse>((req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      requests.push({ method: 'Feedback', tenant, body: req });
      if (!['ham', 'spam'].includes(req.label)) throw new InvalidArgumentError(`label "${req.label}" is not one of the model's labels (ham, spam)`, { field: 'label' });
      const seen = feedbackKeys.get(req.idempotencyKey);
      if (seen !== undefined) return { accepted: true, eventId: seen, duplicate: true };
      let sender: string;
      if (req.target?.$case === 'predictionId') {
        const p = predictions.get(req.target.value);
        if (!p || p.user !== `${tenant}/${req.userId}`) throw new NotFoundError(`no prediction ${req.target.value} for this user`);
        sender = p.sender;
      } else {
        sender = senderOf(req.target?.value);
      }
      if (state.learn) memory.set(`${tenant}/${req.userId}/${sender}`, req.label);
      const eventId = `e-${feedbackKeys.size + 1}`;
      feedbackKeys.set(req.idempotencyKey, eventId);
      return { accepted: true, eventId, duplicate: false };
    }),
  };

  const server: GrpcServer = createGrpcServer({
    config: { host: '127.0.0.1', port: 0, maxReceiveMessageBytes: 8 << 20, maxSendMessageBytes: 8 << 20, requireDeadline: true, drainTimeoutMs: 1_000 },
    logger: createLogger({ service: 'cli-test', level: 'silent' }),
    services: [{ definition: v1.InferenceServiceService, implementation }],
  });
  const bound = await server.start();
  return {
    address: bound.address,
    requests,
    get learn() {
      return state.learn;
    },
    set learn(value: boolean) {
      state.learn = value;
    },
    stop: () => server.forceShutdown(),
  };
}
