import type { Metadata, ServerDuplexStream } from '@grpc/grpc-js';
import { createGrpcServer, createLogger, unary, type GrpcServer } from '@aimass/platform';
import { v1 } from '@aimass/proto';

/**
 * A scripted InferenceService on the platform's real gRPC server (deadlines required, domain
 * errors mapped by the platform's own grpc-mapping). It does no inference: the SDK's behaviour
 * (metadata, deadlines, retries, error types) is under test, not fusion's. Each unary call takes
 * the next step of its method's script; with the script empty it answers a fixed prediction.
 */
export type Step<Res> = { reply: Res } | { fail: Error } | { delayMs: number; then?: Step<Res> };

export interface RecordedCall {
  method: 'Predict' | 'PredictBatch' | 'Feedback' | 'PredictStream';
  request: unknown;
  metadata: Record<string, string>;
  /** ms since the epoch; Infinity when the call had none (the server refuses those first). */
  deadline: number;
  receivedAt: number;
}

export interface ScriptedServer {
  readonly address: string;
  readonly calls: RecordedCall[];
  script: {
    predict: Step<v1.PredictResponse>[];
    predictBatch: Step<v1.PredictBatchResponse>[];
    feedback: Step<v1.FeedbackResponse>[];
  };
  stop(): Promise<void>;
}

function plain(metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata.getMap())) out[k] = typeof v === 'string' ? v : v.toString('utf8');
  return out;
}

export function prediction(label: string, spam: number, extra: Partial<v1.Prediction> = {}): v1.Prediction {
  return {
    predictionId: `p-${label}-${spam}`,
    label,
    probabilities: [
      { label: 'ham', index: 0, probability: 1 - spam },
      { label: 'spam', index: 1, probability: spam },
    ],
    provenance: {
      models: [
        { model: { name: 'general', version: '1' }, role: v1.ModelRole.MODEL_ROLE_GENERAL, weight: 1 },
        { model: { name: 'personal-logreg', version: '' }, role: v1.ModelRole.MODEL_ROLE_PERSONAL, weight: 0 },
      ],
      requestedStrategy: v1.FusionStrategy.FUSION_STRATEGY_STACKING,
      appliedStrategy: v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY,
      fallbacks: [{ reason: v1.FallbackReason.FALLBACK_REASON_NO_PERSONAL_MODEL, role: v1.ModelRole.MODEL_ROLE_PERSONAL, detail: 'user has no personal model yet' }],
      timings: [
        { stage: v1.Stage.STAGE_GENERAL_MODEL, duration: { seconds: 0, nanos: 2_500_000 } },
        { stage: v1.Stage.STAGE_TOTAL, duration: { seconds: 1, nanos: 250_000_000 } },
      ],
    },
    embedding: [],
    general: undefined,
    personal: undefined,
    ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function play<Res>(steps: Step<Res>[], fallback: () => Res): Promise<Res> {
  let step: Step<Res> | undefined = steps.shift();
  while (step && 'delayMs' in step) {
    await sleep(step.delayMs);
    step = step.then;
  }
  if (!step) return fallback();
  if ('fail' in step) throw step.fail;
  return step.reply;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const calls: RecordedCall[] = [];
  const script: ScriptedServer['script'] = { predict: [], predictBatch: [], feedback: [] };
  const record = (method: RecordedCall['method'], request: unknown, metadata: Metadata, deadline: Date | number | undefined) => {
    const at = deadline instanceof Date ? deadline.getTime() : (deadline ?? Infinity);
    calls.push({ method, request, metadata: plain(metadata), deadline: at, receivedAt: Date.now() });
  };

  const implementation: v1.InferenceServiceServer = {
    predict: unary<v1.PredictRequest, v1.PredictResponse>(async (req, ctx) => {
      record('Predict', req, ctx.metadata, ctx.deadline);
      return play(script.predict, () => ({ prediction: prediction('spam', 0.9) }));
    }),
    predictBatch: unary<v1.PredictBatchRequest, v1.PredictBatchResponse>(async (req, ctx) => {
      record('PredictBatch', req, ctx.metadata, ctx.deadline);
      return play(script.predictBatch, () => ({
        results: req.items.map((item) =>
          item.input?.kind?.$case === 'text' && item.input.kind.value === ''
            ? { itemId: item.itemId, outcome: { $case: 'error' as const, value: { code: 3, message: 'input is empty' } } }
            : { itemId: item.itemId, outcome: { $case: 'prediction' as const, value: prediction('ham', 0.1) } },
        ),
      }));
    }),
    feedback: unary<v1.FeedbackRequest, v1.FeedbackResponse>(async (req, ctx) => {
      record('Feedback', req, ctx.metadata, ctx.deadline);
      return play(script.feedback, () => ({ accepted: true, eventId: 'e-1', duplicate: false }));
    }),
    // Answers each item as it arrives, in reverse order of pairs, to show matching by item id.
    predictStream: (call: ServerDuplexStream<v1.PredictStreamRequest, v1.PredictStreamResponse>) => {
      record('PredictStream', undefined, call.metadata, call.getDeadline());
      let held: v1.PredictStreamRequest | undefined;
      const answer = (req: v1.PredictStreamRequest) => {
        const bad = req.input?.kind?.$case === 'text' && req.input.kind.value === '';
        call.write({
          result: {
            itemId: req.itemId,
            outcome: bad
              ? { $case: 'error', value: { code: 3, message: 'input is empty' } }
              : { $case: 'prediction', value: prediction(req.userId === 'spammy' ? 'spam' : 'ham', req.userId === 'spammy' ? 0.8 : 0.2) },
          },
        });
      };
      call.on('data', (req: v1.PredictStreamRequest) => {
        if (req.userId === 'boom') {
          call.emit('error', { code: 8, details: 'stream quota used up', metadata: undefined });
          return;
        }
        if (held) {
          answer(req);
          answer(held);
          held = undefined;
        } else {
          held = req;
        }
      });
      call.on('end', () => {
        if (held) answer(held);
        call.end();
      });
    },
  };

  const logger = createLogger({ service: 'sdk-test', level: 'silent' });
  const server: GrpcServer = createGrpcServer({
    config: { host: '127.0.0.1', port: 0, maxReceiveMessageBytes: 4 << 20, maxSendMessageBytes: 4 << 20, requireDeadline: true, drainTimeoutMs: 1_000 },
    logger,
    services: [{ definition: v1.InferenceServiceService, implementation }],
  });
  const bound = await server.start();
  return {
    address: bound.address,
    calls,
    script,
    stop: async () => server.forceShutdown(),
  };
}
