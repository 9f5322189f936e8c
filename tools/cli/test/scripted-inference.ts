import { createHash } from 'node:crypto';
import { createGrpcServer, createLogger, InvalidArgumentError, NotFoundError, tenantFromMetadata, unary, UnimplementedError, type GrpcServer } from '@aimass/platform';
import { v1 } from '@aimass/proto';

/**
 * A scripted InferenceService and UpdaterAdminService, on one address, for the CLI's plumbing
 * (arguments → SDK → gRPC → output, exit codes, the evaluation's loop and report). It is not a
 * model and says nothing about quality: its "general model" calls an input spam when it contains
 * the word SPAMWORD, and its "personal model" remembers the label a user last gave a sender (its
 * List-Id, else its From domain). Real quality is measured against fusion by
 * `aimass eval personalization --address`.
 */
export interface ScriptedInference {
  readonly address: string;
  readonly requests: { method: string; tenant: string; body: unknown }[];
  /** When false, feedback is accepted but nothing is remembered (a platform that does not learn). */
  learn: boolean;
  /**
   * 0: Feedback trains before it returns. Above: feedback is applied this many ms after it was
   * recorded, as by an updater — the first half in the stream (the tenant's lag), the second
   * received by the updater (the user's pending events).
   */
  trainingDelayMs: number;
  /** Refit jobs fail after their first user. */
  failRefits: boolean;
  stop(): void;
}

interface PendingFeedback {
  tenant: string;
  user: string;
  memoryKey: string;
  label: string;
  receivedAt: number;
  appliedAt: number;
}

interface UserModel {
  version: number;
  sequence: number;
  trainedAt: Date;
}

const GENERAL = { name: 'general', version: '1' };

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
  const state = { learn: true, trainingDelayMs: 0, failRefits: false };
  let next = 0;
  const pending: PendingFeedback[] = [];
  const models = new Map<string, UserModel>();
  const jobs: { tenant: string; job: v1.RefitJob }[] = [];
  let sequence = 0;

  const learn = (tenant: string, user: string, memoryKey: string, label: string) => {
    memory.set(memoryKey, label);
    const model = models.get(`${tenant}/${user}`);
    models.set(`${tenant}/${user}`, { version: (model?.version ?? 0) + 1, sequence: ++sequence, trainedAt: new Date() });
  };
  // Applied when next looked at: to a client, the same as applied on time.
  const applyDue = () => {
    const now = Date.now();
    for (const p of pending.filter((x) => x.appliedAt <= now)) {
      pending.splice(pending.indexOf(p), 1);
      learn(p.tenant, p.user, p.memoryKey, p.label);
    }
  };
  // One user of a refit job done per look at the training state.
  const advanceJobs = (tenant: string) => {
    for (const { job } of jobs.filter((j) => j.tenant === tenant)) {
      if (job.state === v1.RefitJobState.REFIT_JOB_STATE_QUEUED) {
        job.state = v1.RefitJobState.REFIT_JOB_STATE_RUNNING;
        job.startedAt = new Date();
      } else if (job.state === v1.RefitJobState.REFIT_JOB_STATE_RUNNING) {
        if (state.failRefits && job.usersDone + job.usersFailed > 0) {
          job.state = v1.RefitJobState.REFIT_JOB_STATE_FAILED;
          job.finishedAt = new Date();
          continue;
        }
        if (job.usersDone < job.usersTotal) job.usersDone++;
        if (job.usersDone === job.usersTotal) {
          job.state = v1.RefitJobState.REFIT_JOB_STATE_COMPLETED;
          job.finishedAt = new Date();
        }
      }
    }
  };
  const queueJob = (tenant: string, method: string, body: unknown, target: v1.ModelRef | undefined, users: number): v1.RefitJob => {
    requests.push({ method, tenant, body });
    const job: v1.RefitJob = {
      jobId: `job-${jobs.length + 1}`,
      generalModel: { name: target?.name || GENERAL.name, version: target?.version || GENERAL.version },
      state: v1.RefitJobState.REFIT_JOB_STATE_QUEUED,
      usersTotal: users,
      usersDone: 0,
      usersFailed: 0,
      startedAt: undefined,
      finishedAt: undefined,
    };
    jobs.push({ tenant, job });
    return { ...job };
  };

  const predictOne = (tenant: string, user: string, input: v1.InputPayload | undefined, options: v1.PredictOptions | undefined): v1.Prediction => {
    const text = textOf(input);
    if (text.trim() === '') throw new InvalidArgumentError('input is empty: set text or mail', { field: 'input' });
    applyDue();
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
      if (state.learn) {
        const memoryKey = `${tenant}/${req.userId}/${sender}`;
        const now = Date.now();
        if (state.trainingDelayMs <= 0) learn(tenant, req.userId, memoryKey, req.label);
        else pending.push({ tenant, user: req.userId, memoryKey, label: req.label, receivedAt: now + state.trainingDelayMs / 2, appliedAt: now + state.trainingDelayMs });
      }
      const eventId = `e-${feedbackKeys.size + 1}`;
      feedbackKeys.set(req.idempotencyKey, eventId);
      return { accepted: true, eventId, duplicate: false };
    }),
  };

  const updater: v1.UpdaterAdminServiceServer = {
    // The CLI does not call it; the real updater serves it to the privacy service's export.
    exportFeedback: unary<v1.ExportFeedbackRequest, v1.ExportFeedbackResponse>(() => {
      throw new UnimplementedError('the scripted updater does not export feedback');
    }),
    refitUser: unary<v1.RefitUserRequest, v1.RefitUserResponse>((req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      if (req.userId === '') throw new InvalidArgumentError('user_id is required', { field: 'user_id' });
      return { job: queueJob(tenant, 'RefitUser', req, req.generalModel, 1) };
    }),
    refitAll: unary<v1.RefitAllRequest, v1.RefitAllResponse>((req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      // Every model here is paired with general@1: only another target version makes them stale.
      const stale = req.onlyStale ? (req.generalModel?.version || GENERAL.version) !== GENERAL.version : true;
      const users = stale ? [...models.keys()].filter((k) => k.startsWith(`${tenant}/`)).length : 0;
      return { job: queueJob(tenant, 'RefitAll', req, req.generalModel, users) };
    }),
    getTrainingState: unary<v1.GetTrainingStateRequest, v1.GetTrainingStateResponse>((req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      requests.push({ method: 'GetTrainingState', tenant, body: req });
      applyDue();
      advanceJobs(tenant);
      const now = Date.now();
      const mine = pending.filter((p) => p.tenant === tenant);
      const model = models.get(`${tenant}/${req.userId}`);
      const running = (j: v1.RefitJob) => j.state === v1.RefitJobState.REFIT_JOB_STATE_RUNNING || j.state === v1.RefitJobState.REFIT_JOB_STATE_QUEUED;
      const listed = jobs.filter((j) => j.tenant === tenant).map((j) => ({ ...j.job }));
      return {
        pendingEvents: mine.filter((p) => p.receivedAt > now).length,
        user:
          req.userId === ''
            ? undefined
            : {
                userPseudonym: createHash('sha256').update(`${tenant}/${req.userId}`).digest('hex').slice(0, 32).toUpperCase(),
                currentVersion: model?.version ?? 0,
                generalModel: model ? GENERAL : undefined,
                pendingEvents: mine.filter((p) => p.user === req.userId && p.receivedAt <= now).length,
                lastAppliedSequence: model?.sequence ?? 0,
                lastTrainedAt: model?.trainedAt,
                refitPending: false,
              },
        jobs: [...listed.filter(running), ...listed.filter((j) => !running(j)).reverse()],
      };
    }),
  };

  const server: GrpcServer = createGrpcServer({
    config: { host: '127.0.0.1', port: 0, maxReceiveMessageBytes: 8 << 20, maxSendMessageBytes: 8 << 20, requireDeadline: true, drainTimeoutMs: 1_000 },
    logger: createLogger({ service: 'cli-test', level: 'silent' }),
    services: [
      { definition: v1.InferenceServiceService, implementation },
      { definition: v1.UpdaterAdminServiceService, implementation: updater },
    ],
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
    get trainingDelayMs() {
      return state.trainingDelayMs;
    },
    set trainingDelayMs(value: number) {
      state.trainingDelayMs = value;
    },
    get failRefits() {
      return state.failRefits;
    },
    set failRefits(value: boolean) {
      state.failRefits = value;
    },
    stop: () => server.forceShutdown(),
  };
}
