import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fusionConfigSchema, strategyName } from '@aimass/fusion';
import { SERVICE_NAMES, v1 } from '@aimass/proto';
import { TrainingAdminClient } from '@aimass/sdk';
import { NatsServer } from '@aimass/testing';
import { packageMainPath, startServiceProcess, type ServiceProcess } from '../../contenders/service-process.js';
import type { LoadGenerator } from '../../load/load-generator.js';
import { CLASSIFY_METHOD, PREDICT_METHOD, type LoadResult } from '../../load/protocol.js';
import { userIdOf, type UserSelection } from '../../load/users.js';
import type { Progress } from '../../progress.js';
import type { FusionFigures } from '../../report/personal-record.js';
import type { SweepPoint } from '../../report/record.js';
import { freeTcpPort, round, sweepPoint } from '../common.js';
import { grantConsent } from '../consent.js';
import { eventsEnvironment, fusionEnvironment, personalModelEnvironment, privacyEnvironment, updaterEnvironment } from '../service-config.js';
import type { BenchMail } from './mails.js';
import { BENCH_TENANT, figuresOf, measure, PSEUDONYM_SECRET, USER_PREFIX } from './measure.js';
import { population, trafficShareWithModel, type FeedbackDistribution } from './population.js';
import { medianRound } from './rounds.js';
import { seedFeedback } from './seed-feedback.js';

export interface FusionPartOptions {
  readonly work: string;
  readonly generalAddress: string;
  /** Users 1..users; traffic Zipf with exponent zipfS over them. */
  readonly users: number;
  readonly zipfS: number;
  readonly feedback: FeedbackDistribution;
  /** Mails users give feedback on. */
  readonly feedbackMails: readonly BenchMail[];
  /** Mails the measured requests carry (the same for both contenders). */
  readonly requestMails: readonly BenchMail[];
  readonly sweep: readonly number[];
  /**
   * Alternating general-only/fused pairs at the headline concurrency (the sweep's is the first).
   * The ratio is the median of the pairs' ratios: one 8 s window of either contender moves by a
   * fifth from run to run on a shared 2-core machine, and a pair measured back to back shares
   * the machine's state of the moment.
   */
  readonly rounds: number;
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly load: LoadGenerator;
  readonly progress: Progress;
}

/** Planned measuring time of the part, for the ETA. */
export function fusionPartPlanMs(o: Pick<FusionPartOptions, 'sweep' | 'rounds' | 'warmupMs' | 'durationMs'>): number {
  return (2 * (o.sweep.length + o.rounds - 1) + 1) * (o.warmupMs + o.durationMs) + 10_000;
}

/**
 * Part A: the same mails through general-model alone (GeneralModelService.Classify, one input
 * per call) and through the whole personalized path (InferenceService.Predict on fusion, which
 * calls general-model and personal-model over gRPC), every service its own process, users with
 * and without personal models as Zipf traffic. Contenders alternate at each concurrency so a
 * drift of the machine shows in both.
 */
export async function runFusionPart(o: FusionPartOptions): Promise<FusionFigures> {
  const { progress } = o;
  const started: ServiceProcess[] = [];
  let nats: NatsServer | undefined;
  try {
    progress.step('fused: starting nats-server, privacy, personal-model, updater and fusion (their own processes)', 5000);
    // The platform as deployed: consent enforced and personal data sealed with users' keys
    // (privacy), feedback through NATS JetStream and the updater. Every user consents first.
    nats = await NatsServer.start({ storeDir: join(o.work, 'nats') });
    const events = eventsEnvironment(nats.url);
    const startService = async (pkg: Parameters<typeof packageMainPath>[0], service: string, env: (port: number) => Record<string, string>) => {
      const port = await freeTcpPort();
      const proc = await startServiceProcess({ mainPath: packageMainPath(pkg), port, env: env(port), ready: { kind: 'health', service }, startTimeoutMs: 60_000 });
      started.push(proc);
      return proc;
    };
    const privacy = await startService('@aimass/privacy', SERVICE_NAMES.privacy, (port) => ({
      ...privacyEnvironment({ port, storePath: join(o.work, 'privacy.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, kek: randomBytes(32).toString('base64') }),
      ...events,
    }));
    const personal = await startService('@aimass/personal-model', SERVICE_NAMES.personalModel, (port) => ({
      ...personalModelEnvironment({ port, storePath: join(o.work, 'personal-model.sqlite') }),
      ...events,
      AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: privacy.address,
    }));
    const updater = await startService('@aimass/updater', SERVICE_NAMES.updaterAdmin, (port) => ({
      ...updaterEnvironment({ port, storePath: join(o.work, 'updater.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, natsServers: nats!.url, generalModel: o.generalAddress, personalModel: personal.address }),
      AIMASS_UPDATER__PRIVACY__ADDRESS: privacy.address,
    }));
    const fusion = await startService('@aimass/fusion', SERVICE_NAMES.predict, (port) => ({
      ...fusionEnvironment({ port, storePath: join(o.work, 'fusion.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, generalModel: o.generalAddress, personalModel: personal.address }),
      ...events,
      AIMASS_FUSION__PRIVACY__ADDRESS: privacy.address,
    }));
    progress.step(`fused: ${o.users.toLocaleString('en-US')} users consent to personalization and training (PrivacyClient.grant)`, 0);
    await grantConsent({ address: privacy.address, tenant: BENCH_TENANT, userIds: Array.from({ length: o.users }, (_, i) => userIdOf(USER_PREFIX, i + 1)), progress });

    const users = population(o.users, o.feedback);
    const withModel = users.filter((u) => u.examples > 0);
    const examples = withModel.reduce((sum, u) => sum + u.examples, 0);
    progress.step(
      `fused: ${withModel.length.toLocaleString('en-US')} of ${o.users.toLocaleString('en-US')} users give ${examples.toLocaleString('en-US')} feedback examples through fusion's Feedback API`,
      0,
    );
    const seed = await seedFeedback({
      address: fusion.address,
      tenant: BENCH_TENANT,
      userPrefix: USER_PREFIX,
      users,
      mails: o.feedbackMails,
      parallelUsers: 8,
      onProgress: (line) => progress.note(line),
    });
    progress.note(`feedback: ${seed.feedbackCalls.toLocaleString('en-US')} calls in ${seed.seconds.toFixed(1)} s`);
    const training = new TrainingAdminClient({ address: updater.address, tenant: BENCH_TENANT, defaultDeadlineMs: 30_000 });
    try {
      const drainStart = Date.now();
      for (let pending = (await training.trainingState()).pendingEvents; pending > 0; pending = (await training.trainingState()).pendingEvents) {
        if (Date.now() - drainStart > 600_000) throw new Error(`the updater still had ${pending} feedback events to apply after 10 minutes`);
        await new Promise((r) => setTimeout(r, 250));
      }
      progress.note(`feedback applied by the updater ${((Date.now() - drainStart) / 1000).toFixed(1)} s after the last call`);
    } finally {
      training.close();
    }

    const classifyPayloads = o.requestMails.map((m) => v1.ClassifyRequest.encode({ model: undefined, inputs: [m.input], includeEmbedding: false, includeLogits: false }).finish());
    const predictTemplate = (strategy: v1.FusionStrategy) =>
      o.requestMails.map((m) =>
        v1.PredictRequest.encode({
          userId: '',
          input: m.input,
          options: strategy === v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED ? undefined : { strategy, topK: 0, includeEmbedding: false, includeComponents: false, generalModel: undefined },
        }).finish(),
      );
    const predictPayloads = predictTemplate(v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED);
    const users$ = (seed: number): UserSelection => ({
      key: { kind: 'user-id', prefix: USER_PREFIX },
      pick: { kind: 'zipf', count: o.users, exponent: o.zipfS, seed },
      field: 1,
    });
    const pointMs = o.warmupMs + o.durationMs;
    const common = { connections: o.connections, warmupMs: o.warmupMs, durationMs: o.durationMs, plannedMs: pointMs };
    const general: SweepPoint[] = [];
    const fused: SweepPoint[] = [];
    const headline = Math.max(...o.sweep);
    const pair = async (c: number, n: number) => {
      const suffix = n > 1 ? `, round ${n} of ${o.rounds}` : '';
      const g = await measure(o.load, progress, {
        ...common,
        label: `fused: general-only (Classify on general-model), ${c} clients${suffix}`,
        address: o.generalAddress,
        method: CLASSIFY_METHOD,
        payloads: classifyPayloads,
        response: { kind: 'classify', results: 1 },
        mode: { kind: 'closed', concurrency: c },
      });
      const f = await measure(o.load, progress, {
        ...common,
        label: `fused: fused (Predict on fusion), ${c} clients${suffix}`,
        address: fusion.address,
        method: PREDICT_METHOD,
        payloads: predictPayloads,
        response: { kind: 'predict' },
        users: users$(7 + c + 1000 * (n - 1)),
        mode: { kind: 'closed', concurrency: c },
      });
      return { g, f };
    };
    const pairs: { g: LoadResult; f: LoadResult }[] = [];
    for (const c of o.sweep) {
      const { g, f } = await pair(c, 1);
      general.push(sweepPoint(c, g));
      fused.push(sweepPoint(c, f));
      if (c === headline) pairs.push({ g, f });
    }
    for (let n = 2; n <= o.rounds; n++) pairs.push(await pair(headline, n));
    const { rounds, median } = medianRound(pairs.map(({ g, f }) => ({ generalRowsPerS: g.rowsPerS, fusedRowsPerS: f.rowsPerS })));
    const { g: generalHeadline, f: fusedHeadline } = pairs[median.round - 1]!;
    if (rounds.length > 1) progress.note(`fused/general-only per round: ${rounds.map((r) => r.ratio.toFixed(3)).join(', ')}; median ${median.ratio.toFixed(3)} (round ${median.round})`);
    const fusionGeneralOnly = await measure(o.load, progress, {
      ...common,
      label: `fused: Predict with strategy GENERAL_ONLY (fusion without the personal model), ${headline} clients`,
      address: fusion.address,
      method: PREDICT_METHOD,
      payloads: predictTemplate(v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY),
      response: { kind: 'predict' },
      users: users$(99),
      mode: { kind: 'closed', concurrency: headline },
    });
    const answered = Object.values(fusedHeadline.outcomes).reduce((a, b) => a + b, 0);
    const personalized = Object.entries(fusedHeadline.outcomes)
      .filter(([k]) => k.startsWith('applied:'))
      .reduce((a, [, v]) => a + v, 0);
    if (answered > 0 && personalized === 0) progress.note('warning: no fused answer used a personal model: check the seeding (fallbacks above)');
    return {
      headline_concurrency: headline,
      general_only: figuresOf(headline, generalHeadline),
      fused: figuresOf(headline, fusedHeadline),
      fusion_strategy_general_only: figuresOf(headline, fusionGeneralOnly),
      rounds,
      median_round: median.round,
      sweep: { general_only: general, fused },
      users: {
        count: o.users,
        traffic_zipf_s: o.zipfS,
        with_model: withModel.length,
        model_share: o.feedback.modelShare,
        examples: { min: 1, max: o.feedback.examplesMax, zipf_s: o.feedback.examplesS, mean: round(examples / Math.max(1, withModel.length), 2) },
        traffic_share_with_model_expected: round(trafficShareWithModel(users, o.zipfS), 4),
        traffic_share_with_model_measured: answered === 0 ? null : round(personalized / answered, 4),
        feedback_calls: seed.feedbackCalls,
        seeding_seconds: round(seed.seconds, 1),
      },
      request: `one mail per call (InputPayload.mail: subject, decoded text parts, headers) of ${o.requestMails.length} SpamAssassin mails, the same for both; Classify without embedding or logits (what a general-only client asks), Predict with the tenant's default strategy (${strategyName(fusionConfigSchema.parse({}).defaults.strategy)}) for Zipf(s=${o.zipfS}) users of ${o.users.toLocaleString('en-US')}`,
    };
  } catch (error) {
    const logs = started.map((s) => s.logTail()).join('\n');
    throw new Error(`${(error as Error).message}${logs.trim() === '' ? '' : `\n--- service logs ---\n${logs}`}`, { cause: error });
  } finally {
    for (const s of started.reverse()) await s.close();
    await nats?.dispose();
  }
}
