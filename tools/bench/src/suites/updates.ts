import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fusionConfigSchema } from '@aimass/fusion';
import { personalModelConfigSchema } from '@aimass/personal-model';
import { SERVICE_NAMES } from '@aimass/proto';
import { NatsServer } from '@aimass/testing';
import { loadSpamAssassin } from '@aimass/train-general';
import { updaterConfigSchema } from '@aimass/updater';
import { packageMainPath, startServiceProcess, type ServiceProcess } from '../contenders/service-process.js';
import { userIdOf } from '../load/users.js';
import { hashUniform } from '../load/zipf.js';
import type { Progress } from '../progress.js';
import { updatesGoalChecks, type UpdatesRecord } from '../report/updates-record.js';
import { randomBytes } from 'node:crypto';
import { grantConsent } from './consent.js';
import { environment, freeTcpPort, loadAverages, warnIfBusy } from './common.js';
import { DEFAULT_SERVED_NAME, prepareDefaultRepository } from './default-model.js';
import { sampleMails } from './personal/mails.js';
import { BENCH_TENANT, CALL_DEADLINE_MS, PSEUDONYM_SECRET, USER_PREFIX } from './personal/measure.js';
import { population } from './personal/population.js';
import {
  eventsEnvironment,
  fusionEnvironment,
  personalModelEnvironment,
  privacyEnvironment,
  serviceEnvironment,
  updaterEnvironment,
  writeBatchingConfig,
} from './service-config.js';
import { runUpdatesLoad } from './updates/load.js';

export interface UpdatesSuiteOptions {
  readonly quick: boolean;
  /** Users the feedback is spread over (default 1,000, quick 100). */
  readonly users: number | undefined;
  /** Feedback events offered per second (default 200, quick 50). */
  readonly rate: number | undefined;
  /** Seconds measured (default 60, quick 15), after a warm-up of 30 s (quick 3 s). */
  readonly durationS: number | undefined;
  /** Closed-loop Predict clients running throughout. */
  readonly predictClients: number;
  /** Share of users whose every event is timed (default 0.1, quick 0.2). */
  readonly probeShare: number | undefined;
  /** Pause between a probe's Predicts, ms. */
  readonly pollMs: number;
  /** general-model worker threads and onnxruntime intra-op threads per worker. */
  readonly workers: number;
  readonly intraOp: number;
  /** Where the trained default model is cached between runs. */
  readonly cacheDir: string;
  readonly progress: Progress;
}

/** Mails sampled from the corpus: feedback draws from all of them, background Predicts from the first REQUEST_MAILS. */
const SAMPLE_MAILS = 1500;
const REQUEST_MAILS = 512;
/** As in the personal suite: inputs above this are left out of the sample. */
const MAX_MAIL_BYTES = 64 * 1024;
const SALT_PROBE = 0x9b0e;
/** Zipf exponent of the background Predicts over the users (the personal suite's traffic law). */
const TRAFFIC_ZIPF_S = 1;
const SEED = 0x5eed;

/** The suite's settings once --quick and the defaults are applied. */
export function updatesSettings(o: Pick<UpdatesSuiteOptions, 'quick' | 'users' | 'rate' | 'durationS' | 'probeShare'>) {
  const rate = o.rate ?? (o.quick ? 50 : 200);
  return {
    users: o.users ?? (o.quick ? 100 : 1000),
    rate,
    durationMs: (o.durationS ?? (o.quick ? 15 : 60)) * 1000,
    // 30 s: a cold platform (every process just started, JIT cold, 1,000 users without a model) builds
    // a backlog of a few hundred events in its first ~15 s at 200/s and drains it; the figures are
    // of the platform running, the start-up transient is in the plot and the README.
    warmupMs: o.quick ? 3000 : 30_000,
    probeShare: o.probeShare ?? (o.quick ? 0.2 : 0.1),
    probeTimeoutMs: 30_000,
    drainTimeoutMs: o.quick ? 60_000 : 120_000,
    // Five seconds of events: beyond that the platform is not keeping up and more calls only queue.
    maxInFlight: Math.max(100, Math.ceil(rate * 5)),
  };
}

/** Users whose every event is timed: a fixed hash-chosen share, at least one. */
export function probeUserSet(users: number, share: number): Set<number> {
  const set = new Set<number>();
  for (let rank = 1; rank <= users; rank++) if (hashUniform(rank, SALT_PROBE) < share) set.add(rank);
  if (set.size === 0) set.add(1);
  return set;
}

/**
 * The `updates` suite: feedback flows as in production — fusion publishes FeedbackRecorded to
 * NATS JetStream, the updater consumes it and trains the user's model on personal-model, which
 * publishes PersonalModelUpdated — every service its own process, while Predict load runs. It
 * measures how soon a Predict reflects a piece of feedback (freshness), how many events the
 * updater applies per second, and its backlog when the load stops.
 */
export async function runUpdatesSuite(options: UpdatesSuiteOptions): Promise<UpdatesRecord> {
  const { progress } = options;
  const s = updatesSettings(options);
  progress.plan(10_000 + s.warmupMs + s.durationMs);
  warnIfBusy(progress);
  const loadBefore = loadAverages();
  const work = await mkdtemp(join(tmpdir(), 'aimass-bench-updates-'));
  const started: { name: string; proc: ServiceProcess }[] = [];
  let nats: NatsServer | undefined;
  try {
    progress.step('preparing the general model and the mails', 0);
    const corpus = loadSpamAssassin();
    const repository = join(work, 'repository');
    await prepareDefaultRepository(repository, options.cacheDir, progress, corpus);
    await writeBatchingConfig(join(repository, DEFAULT_SERVED_NAME, 'config.json'), { maxBatch: 64, queueDelayMs: 0 });
    const mails = sampleMails(corpus, SAMPLE_MAILS, MAX_MAIL_BYTES);

    progress.step('starting nats-server (JetStream) and the five services, each its own process', 10_000);
    nats = await NatsServer.start({ storeDir: join(work, 'nats') });
    const start = async (pkg: Parameters<typeof packageMainPath>[0], service: string, env: (port: number) => Record<string, string>, ready?: { kind: 'model'; model: string }) => {
      const port = await freeTcpPort();
      const proc = await startServiceProcess({ mainPath: packageMainPath(pkg), port, env: env(port), ready: ready ?? { kind: 'health', service }, startTimeoutMs: 120_000 });
      started.push({ name: pkg.replace('@aimass/', ''), proc });
      return proc;
    };
    // privacy first: the others ask it for consent and for users' data keys.
    const privacy = await start('@aimass/privacy', SERVICE_NAMES.privacy, (port) => ({
      ...privacyEnvironment({ port, storePath: join(work, 'privacy.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, kek: randomBytes(32).toString('base64') }),
      ...eventsEnvironment(nats!.url),
    }));
    // general-model has no events: it neither publishes nor consumes any.
    const general = await start('@aimass/general-model', SERVICE_NAMES.inference, (port) => serviceEnvironment({ repository, model: DEFAULT_SERVED_NAME, port, workers: options.workers, intraOp: options.intraOp }), {
      kind: 'model',
      model: DEFAULT_SERVED_NAME,
    });
    const personal = await start('@aimass/personal-model', SERVICE_NAMES.personalModel, (port) => ({
      ...personalModelEnvironment({ port, storePath: join(work, 'personal-model.sqlite') }),
      ...eventsEnvironment(nats!.url),
      AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: privacy.address,
    }));
    const updater = await start('@aimass/updater', SERVICE_NAMES.updaterAdmin, (port) => ({
      ...updaterEnvironment({
        port,
        storePath: join(work, 'updater.sqlite'),
        pseudonymSecret: PSEUDONYM_SECRET,
        natsServers: nats!.url,
        generalModel: general.address,
        personalModel: personal.address,
      }),
      AIMASS_UPDATER__PRIVACY__ADDRESS: privacy.address,
    }));
    const fusion = await start('@aimass/fusion', SERVICE_NAMES.predict, (port) => ({
      ...fusionEnvironment({ port, storePath: join(work, 'fusion.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, generalModel: general.address, personalModel: personal.address }),
      ...eventsEnvironment(nats!.url),
      AIMASS_FUSION__PRIVACY__ADDRESS: privacy.address,
    }));
    await grantConsent({ address: privacy.address, tenant: BENCH_TENANT, userIds: Array.from({ length: s.users }, (_, i) => userIdOf(USER_PREFIX, i + 1)), progress });

    const probes = probeUserSet(s.users, s.probeShare);
    const tastes = population(s.users, { modelShare: 0, examplesMax: 1, examplesS: 1 });
    progress.step(
      `warm-up: feedback at ${s.rate}/s over ${s.users.toLocaleString('en-US')} users, ${options.predictClients} Predict clients (${s.warmupMs / 1000} s, not measured)`,
      s.warmupMs,
    );
    const m = await runUpdatesLoad({
        fusionAddress: fusion.address,
        updaterAddress: updater.address,
        tenant: BENCH_TENANT,
        userPrefix: USER_PREFIX,
        users: s.users,
        isProbeUser: (rank) => probes.has(rank),
        probeUsers: probes.size,
        tasteOf: (rank) => tastes[rank - 1]!.taste,
        feedbackMails: mails,
        requestMails: mails.slice(0, REQUEST_MAILS),
        ratePerS: s.rate,
        predictClients: options.predictClients,
        trafficZipfS: TRAFFIC_ZIPF_S,
        warmupMs: s.warmupMs,
        durationMs: s.durationMs,
        pollMs: options.pollMs,
        probeTimeoutMs: s.probeTimeoutMs,
        maxInFlight: s.maxInFlight,
        drainTimeoutMs: s.drainTimeoutMs,
        callDeadlineMs: CALL_DEADLINE_MS,
        seed: SEED,
        progress,
        onWindowOpen: () => progress.step(`measuring: ${s.durationMs / 1000} s; every event of ${probes.size} users timed until a Predict shows the new personal model version`, s.durationMs),
      });
    if (m.freshness.samples === 0) progress.note('warning: no feedback event was timed: see the errors in the table (and feedback.error_kinds, predict.error_kinds in the JSON)');
    const p50 = m.freshness.samples === 0 ? null : m.freshness.p50_ms;
    const p99 = m.freshness.samples === 0 ? null : m.freshness.p99_ms;
    return {
      suite: 'updates',
      freshness_p50_ms: p50,
      freshness_p99_ms: p99,
      events_per_s: m.updater.events_per_s,
      lag_at_end: m.updater.lag_at_end,
      offered_feedback_per_s: m.feedback.offered_per_s,
      achieved_feedback_per_s: m.feedback.achieved_per_s,
      users: s.users,
      predict_per_s: m.predict.all_per_s,
      freshness_samples: m.freshness.samples,
      duration_s: s.durationMs / 1000,
      warmup_s: s.warmupMs / 1000,
      goals: updatesGoalChecks(p99),
      freshness: m.freshness,
      feedback: m.feedback,
      predict: m.predict,
      updater: m.updater,
      bench_event_loop_delay_ms: m.eventLoopDelayMs,
      setup: {
        tenant: BENCH_TENANT,
        privacy: 'services/privacy/dist/main.js, its own SQLite file, KEK from configuration; personal-model, updater and fusion are given its address: consent enforced (every user granted both purposes through PrivacyClient before the load), feedback payloads, history and models sealed with users\' keys',
        nats: 'nats-server -js on a free port, its store in the run\'s temporary directory (@aimass/testing NatsServer)',
        general_model: { process: 'services/general-model/dist/main.js', model: `${DEFAULT_SERVED_NAME} (tools/train-general, cached)`, workers: options.workers, intra_op_threads: options.intraOp, max_batch_size: 64, max_queue_delay_ms: 0, events: 'none (it has no events section)' },
        personal_model: { process: 'services/personal-model/dist/main.js, its own SQLite file, events kind nats', defaults_used: personalModelConfigSchema.parse({}) },
        updater: { process: 'services/updater/dist/main.js, its own SQLite file, events kind nats, the pseudonym secret of fusion, both models\' addresses', defaults_used: updaterConfigSchema.parse({}) },
        fusion: { process: 'services/fusion/dist/main.js, its own SQLite file, events kind nats (Feedback publishes FeedbackRecorded and answers once the stream stored it), both models\' addresses', defaults_used: fusionConfigSchema.parse({}) },
        clients: `the bench process, @aimass/sdk AiMassClient (no retries) on three channels: background Predicts (${options.predictClients} closed-loop clients, users Zipf s=${TRAFFIC_ZIPF_S}), feedback events, probes; call deadline ${CALL_DEADLINE_MS} ms`,
        probe_share: s.probeShare,
        max_in_flight: s.maxInFlight,
      },
      environment: { ...environment(options.quick), load_average_before: loadBefore, load_average_after: loadAverages() },
    };
  } catch (error) {
    const logs = started
      .map((p) => ({ name: p.name, tail: p.proc.logTail().trim() }))
      .filter((p) => p.tail !== '')
      .map((p) => `--- ${p.name} ---\n${p.tail}`)
      .join('\n');
    const natsLog = nats?.output.trim() ?? '';
    throw new Error(`${(error as Error).message}${logs === '' ? '' : `\n${logs}`}${natsLog === '' ? '' : `\n--- nats-server ---\n${natsLog.slice(-4000)}`}`, { cause: error });
  } finally {
    for (const p of started.reverse()) await p.proc.close();
    await nats?.dispose();
    await rm(work, { recursive: true, force: true });
  }
}
