import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SERVICE_NAMES } from '@aimass/proto';
import { AiMassClient, PrivacyClient, TrainingAdminClient } from '@aimass/sdk';
import { NatsServer } from '@aimass/testing';
import { loadSpamAssassin } from '@aimass/train-general';
import { packageMainPath, startServiceProcess, type ServiceProcess } from '../contenders/service-process.js';
import { SampleBuffer, summarizeLatencies } from '../load/stats.js';
import type { Progress } from '../progress.js';
import { privacyGoalChecks, type PrivacyRecord } from '../report/privacy-record.js';
import { grantConsent } from './consent.js';
import { environment, freeTcpPort, loadAverages, round, warnIfBusy } from './common.js';
import { DEFAULT_SERVED_NAME, prepareDefaultRepository } from './default-model.js';
import { sampleMails, type BenchMail } from './personal/mails.js';
import { BENCH_TENANT, CALL_DEADLINE_MS, PSEUDONYM_SECRET, USER_PREFIX } from './personal/measure.js';
import {
  eventsEnvironment,
  fusionEnvironment,
  personalModelEnvironment,
  privacyEnvironment,
  serviceEnvironment,
  updaterEnvironment,
  writeBatchingConfig,
} from './service-config.js';

export interface PrivacySuiteOptions {
  readonly quick: boolean;
  /** Users that Predict runs over (default 200, quick 40); each consents and has a personal model. */
  readonly users: number | undefined;
  /** Users erased under load (default 100, quick 20), besides `users`. */
  readonly erasures: number | undefined;
  /** Erasures in flight at once. */
  readonly erasureConcurrency: number;
  /** Closed-loop Predict clients of the overhead slices: 1 measures each call's own cost, more adds queueing. */
  readonly overheadClients: number;
  /** Closed-loop Predict clients loading the platform while users are erased. */
  readonly predictClients: number;
  /** Seconds of the overhead measurement, over both stacks (default 40, quick 8). */
  readonly durationS: number | undefined;
  readonly workers: number;
  readonly intraOp: number;
  readonly cacheDir: string;
  readonly progress: Progress;
}

const SAMPLE_MAILS = 400;
const MAX_MAIL_BYTES = 64 * 1024;
/** Feedback per user before measuring, so each has a stored (sealed) personal model. */
const SEED_FEEDBACK = 3;
/** The overhead window is cut into this many slices, alternating the stacks A B B A A B …, so drift (JIT, page cache, a neighbour) hits both alike. */
const SLICES = 8;
const RECEIPT_POLL_MS = 10;
const ERASURE_TIMEOUT_MS = 60_000;

export function privacySettings(o: Pick<PrivacySuiteOptions, 'quick' | 'users' | 'erasures' | 'durationS'>) {
  return {
    users: o.users ?? (o.quick ? 40 : 200),
    erasures: o.erasures ?? (o.quick ? 20 : 100),
    overheadMs: (o.durationS ?? (o.quick ? 8 : 40)) * 1000,
  };
}

/** A B B A A B B A …: each stack leads half of the pairs. */
export function sliceOrder(slices: number): Array<'on' | 'off'> {
  return Array.from({ length: slices }, (_, i) => ((i + 1) % 4 < 2 ? 'on' : 'off'));
}

const userId = (rank: number) => `${USER_PREFIX}${rank}`;

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i] as T, i);
      }
    }),
  );
}

interface Loop {
  readonly samples: SampleBuffer;
  /** Server-side time per stage (the answer's provenance), to show where a difference lies. */
  readonly stages: Map<string, SampleBuffer>;
  errors: number;
  readonly errorKinds: Record<string, number>;
}

/** `clients` closed loops of Predict on `client` until `until()` is past; latency of each successful call. */
async function predictLoop(client: AiMassClient, users: number, mails: readonly BenchMail[], clients: number, untilMs: number, loop: Loop, seed: number): Promise<void> {
  let state = seed >>> 0 || 1;
  const rand = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < untilMs) {
        const rank = 1 + Math.floor(rand() * users);
        const mail = mails[Math.floor(rand() * mails.length)] as BenchMail;
        const t0 = performance.now();
        try {
          const p = await client.predict(userId(rank), mail.input, { deadlineMs: CALL_DEADLINE_MS });
          loop.samples.push(performance.now() - t0);
          for (const [stage, ms] of Object.entries(p.provenance.timingsMs)) {
            if (typeof ms !== 'number') continue;
            let buffer = loop.stages.get(stage);
            if (!buffer) loop.stages.set(stage, (buffer = new SampleBuffer()));
            buffer.push(ms);
          }
        } catch (err) {
          loop.errors += 1;
          const kind = (err as Error).name ?? 'Error';
          loop.errorKinds[kind] = (loop.errorKinds[kind] ?? 0) + 1;
        }
      }
    }),
  );
}

const newLoop = (): Loop => ({ samples: new SampleBuffer(), stages: new Map(), errors: 0, errorKinds: {} });

const stageP50s = (loop: Loop): Record<string, number> =>
  Object.fromEntries([...loop.stages].map(([stage, buffer]) => [stage, round(summarizeLatencies(buffer.values()).p50, 3)]));

/**
 * The `privacy` suite. Two stacks share one general-model: **on**, the platform as deployed —
 * privacy, and a personal-model, updater and fusion given its address (consent caches fed by
 * ConsentChanged, personal data sealed with users' keys) on their own nats-server — and **off**,
 * the same personal-model, updater and fusion on a second nats-server without the privacy
 * service. Every user consents (through the privacy API, as an integration records it) and gets a
 * personal model on both stacks through Feedback and the updater. Then:
 *
 * 1. consent-check cost: the same closed-loop Predict load on each stack in alternating slices
 *    (one client by default: each call's own cost, not queueing); the overhead is p50(on) − p50(off);
 * 2. erasure: users erased under Predict load on the on stack, each timed from Erase to the
 *    receipt listing every service as completed (polled every 10 ms).
 */
export async function runPrivacySuite(options: PrivacySuiteOptions): Promise<PrivacyRecord> {
  const { progress } = options;
  const s = privacySettings(options);
  const totalUsers = s.users + s.erasures;
  progress.plan(30_000 + s.overheadMs + 20_000);
  warnIfBusy(progress);
  const loadBefore = loadAverages();
  const work = await mkdtemp(join(tmpdir(), 'aimass-bench-privacy-'));
  const started: { name: string; proc: ServiceProcess }[] = [];
  let nats: NatsServer | undefined;
  let natsOff: NatsServer | undefined;
  const clients: Array<{ close(): void }> = [];
  try {
    progress.step('preparing the general model and the mails', 0);
    const corpus = loadSpamAssassin();
    const repository = join(work, 'repository');
    await prepareDefaultRepository(repository, options.cacheDir, progress, corpus);
    await writeBatchingConfig(join(repository, DEFAULT_SERVED_NAME, 'config.json'), { maxBatch: 64, queueDelayMs: 0 });
    const mails = sampleMails(corpus, SAMPLE_MAILS, MAX_MAIL_BYTES);

    progress.step('starting two nats-servers and eight service processes (privacy, general-model, and a personal-model, updater and fusion per stack)', 10_000);
    nats = await NatsServer.start({ storeDir: join(work, 'nats') });
    // The off stack is the same deployment without the privacy service: its own bus, personal-model,
    // updater and fusion, so the two differ only in consent enforcement and sealing.
    natsOff = await NatsServer.start({ storeDir: join(work, 'nats-off') });
    const events = eventsEnvironment(nats.url);
    const eventsOff = eventsEnvironment(natsOff.url);
    const start = async (pkg: Parameters<typeof packageMainPath>[0], label: string, service: string, env: (port: number) => Record<string, string>, ready?: { kind: 'model'; model: string }) => {
      const port = await freeTcpPort();
      const proc = await startServiceProcess({ mainPath: packageMainPath(pkg), port, env: env(port), ready: ready ?? { kind: 'health', service }, startTimeoutMs: 120_000 });
      started.push({ name: label, proc });
      return proc;
    };
    const privacy = await start('@aimass/privacy', 'privacy', SERVICE_NAMES.privacy, (port) => ({
      ...privacyEnvironment({ port, storePath: join(work, 'privacy.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, kek: randomBytes(32).toString('base64') }),
      ...events,
    }));
    const general = await start('@aimass/general-model', 'general-model', SERVICE_NAMES.inference, (port) => serviceEnvironment({ repository, model: DEFAULT_SERVED_NAME, port, workers: options.workers, intraOp: options.intraOp }), {
      kind: 'model',
      model: DEFAULT_SERVED_NAME,
    });
    const personalOn = await start('@aimass/personal-model', 'personal-model (on)', SERVICE_NAMES.personalModel, (port) => ({
      ...personalModelEnvironment({ port, storePath: join(work, 'personal-on.sqlite') }),
      ...events,
      AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: privacy.address,
    }));
    const personalOff = await start('@aimass/personal-model', 'personal-model (off)', SERVICE_NAMES.personalModel, (port) => ({
      ...personalModelEnvironment({ port, storePath: join(work, 'personal-off.sqlite') }),
      ...eventsOff,
    }));
    const updater = await start('@aimass/updater', 'updater', SERVICE_NAMES.updaterAdmin, (port) => ({
      ...updaterEnvironment({ port, storePath: join(work, 'updater.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, natsServers: nats!.url, generalModel: general.address, personalModel: personalOn.address }),
      AIMASS_UPDATER__PRIVACY__ADDRESS: privacy.address,
    }));
    const fusionOn = await start('@aimass/fusion', 'fusion (on)', SERVICE_NAMES.predict, (port) => ({
      ...fusionEnvironment({ port, storePath: join(work, 'fusion-on.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, generalModel: general.address, personalModel: personalOn.address }),
      ...events,
      AIMASS_FUSION__PRIVACY__ADDRESS: privacy.address,
    }));
    const updaterOff = await start('@aimass/updater', 'updater (off)', SERVICE_NAMES.updaterAdmin, (port) =>
      updaterEnvironment({
        port,
        storePath: join(work, 'updater-off.sqlite'),
        pseudonymSecret: PSEUDONYM_SECRET,
        natsServers: natsOff!.url,
        generalModel: general.address,
        personalModel: personalOff.address,
      }),
    );
    const fusionOff = await start('@aimass/fusion', 'fusion (off)', SERVICE_NAMES.predict, (port) => ({
      ...fusionEnvironment({ port, storePath: join(work, 'fusion-off.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, generalModel: general.address, personalModel: personalOff.address }),
      ...eventsOff,
    }));

    const on = new AiMassClient({ address: fusionOn.address, tenant: BENCH_TENANT, defaultDeadlineMs: CALL_DEADLINE_MS });
    const off = new AiMassClient({ address: fusionOff.address, tenant: BENCH_TENANT, defaultDeadlineMs: CALL_DEADLINE_MS });
    const consent = new PrivacyClient({ address: privacy.address, tenant: BENCH_TENANT, defaultDeadlineMs: CALL_DEADLINE_MS });
    const training = new TrainingAdminClient({ address: updater.address, tenant: BENCH_TENANT, defaultDeadlineMs: CALL_DEADLINE_MS });
    const trainingOff = new TrainingAdminClient({ address: updaterOff.address, tenant: BENCH_TENANT, defaultDeadlineMs: CALL_DEADLINE_MS });
    clients.push(on, off, consent, training, trainingOff);

    progress.step(`${totalUsers} users consent and give ${SEED_FEEDBACK} feedback each on both stacks`, 20_000);
    const ranks = Array.from({ length: totalUsers }, (_, i) => i + 1);
    await grantConsent({ address: privacy.address, tenant: BENCH_TENANT, userIds: ranks.map(userId), progress });
    await pool(ranks, 8, async (rank) => {
      for (let k = 0; k < SEED_FEEDBACK; k++) {
        const mail = mails[(rank * 7 + k) % mails.length] as BenchMail;
        // Half the users disagree with the corpus, so their models carry something.
        const label = rank % 2 === 0 ? mail.label : mail.label === 'spam' ? 'ham' : 'spam';
        await on.feedback({ userId: userId(rank), input: mail.input, label, idempotencyKey: `seed-${rank}-${k}` });
        await off.feedback({ userId: userId(rank), input: mail.input, label, idempotencyKey: `seed-${rank}-${k}` });
      }
    });
    const drainStart = performance.now();
    while ((await training.trainingState()).pendingEvents > 0 || (await trainingOff.trainingState()).pendingEvents > 0) {
      if (performance.now() - drainStart > 120_000) throw new Error('the updater did not apply the seed feedback within 120 s');
      await new Promise((r) => setTimeout(r, 100));
    }

    // Warm both stacks (JIT, caches of models, keys and consent) before anything is measured.
    progress.step('warming both stacks (not measured)', 0);
    const warm = Math.min(5_000, s.overheadMs / 4);
    await predictLoop(on, s.users, mails, options.overheadClients, performance.now() + warm, newLoop(), 11);
    await predictLoop(off, s.users, mails, options.overheadClients, performance.now() + warm, newLoop(), 12);

    const loops = { on: newLoop(), off: newLoop() };
    const order = sliceOrder(SLICES);
    const sliceMs = s.overheadMs / SLICES;
    for (const [i, stack] of order.entries()) {
      progress.step(`overhead slice ${i + 1}/${SLICES}: Predict on the ${stack === 'on' ? 'enforcing' : 'non-enforcing'} stack, ${options.overheadClients} client(s)`, sliceMs);
      await predictLoop(stack === 'on' ? on : off, s.users, mails, options.overheadClients, performance.now() + sliceMs, loops[stack], 100 + i);
    }
    const latOn = summarizeLatencies(loops.on.samples.values());
    const latOff = summarizeLatencies(loops.off.samples.values());

    progress.step(`erasing ${s.erasures} users (${options.erasureConcurrency} at a time) under Predict load`, 20_000);
    const background = newLoop();
    let erasing = true;
    const backgroundRun = (async () => {
      let round = 0;
      while (erasing) await predictLoop(on, s.users, mails, options.predictClients, performance.now() + 1_000, background, 1_000 + round++);
    })();
    const completion = new SampleBuffer();
    const eraseCall = new SampleBuffer();
    const erasureErrors: string[] = [];
    const erasureRanks = ranks.slice(s.users);
    await pool(erasureRanks, options.erasureConcurrency, async (rank) => {
      const t0 = performance.now();
      try {
        const { erasureId } = await consent.erase(userId(rank), { reason: 'bench', idempotencyKey: `bench-erase-${rank}` });
        eraseCall.push(performance.now() - t0);
        for (;;) {
          const receipt = await consent.erasureReceipt(erasureId);
          if (receipt.status === 'completed') break;
          if (performance.now() - t0 > ERASURE_TIMEOUT_MS) throw new Error(`erasure ${erasureId} not complete after ${ERASURE_TIMEOUT_MS} ms: ${receipt.confirmations.filter((c) => c.status !== 'completed').map((c) => c.service).join(', ')} pending`);
          await new Promise((r) => setTimeout(r, RECEIPT_POLL_MS));
        }
        completion.push(performance.now() - t0);
      } catch (err) {
        erasureErrors.push((err as Error).message);
        completion.push(ERASURE_TIMEOUT_MS);
      }
    });
    erasing = false;
    await backgroundRun;
    const erasure = summarizeLatencies(completion.values());
    const eraseLatency = summarizeLatencies(eraseCall.values());
    const bg = summarizeLatencies(background.samples.values());

    const overhead = latOn.p50 - latOff.p50;
    return {
      suite: 'privacy',
      erasure_p99_ms: round(erasure.p99, 1),
      consent_overhead_p50_ms: round(overhead, 3),
      goals: privacyGoalChecks(erasure.p99, overhead),
      erasure: {
        erased: s.erasures,
        concurrency: options.erasureConcurrency,
        failures: erasureErrors.length,
        failure_examples: erasureErrors.slice(0, 5),
        completion_ms: { p50: round(erasure.p50, 1), p90: round(erasure.p90, 1), p99: round(erasure.p99, 1), max: round(erasure.max, 1), mean: round(erasure.mean, 1) },
        erase_call_ms: { p50: round(eraseLatency.p50, 2), p99: round(eraseLatency.p99, 2) },
        receipt_poll_ms: RECEIPT_POLL_MS,
        samples: Array.from(completion.values(), (v) => round(v, 1)),
        predict_under_erasure: { clients: options.predictClients, calls: bg.count, errors: background.errors, p50_ms: round(bg.p50, 2), p99_ms: round(bg.p99, 2) },
      },
      predict: {
        clients: options.overheadClients,
        slices: order,
        slice_ms: sliceMs,
        on: { calls: latOn.count, errors: loops.on.errors, error_kinds: loops.on.errorKinds, p50_ms: round(latOn.p50, 3), p90_ms: round(latOn.p90, 3), p99_ms: round(latOn.p99, 3), mean_ms: round(latOn.mean, 3) },
        off: { calls: latOff.count, errors: loops.off.errors, error_kinds: loops.off.errorKinds, p50_ms: round(latOff.p50, 3), p90_ms: round(latOff.p90, 3), p99_ms: round(latOff.p99, 3), mean_ms: round(latOff.mean, 3) },
        stage_p50_ms: { on: stageP50s(loops.on), off: stageP50s(loops.off) },
        cdf_on: downsample(loops.on.samples.values()),
        cdf_off: downsample(loops.off.samples.values()),
      },
      users: s.users,
      seed_feedback_per_user: SEED_FEEDBACK,
      setup: {
        tenant: BENCH_TENANT,
        on_stack: 'privacy (consent, data keys; KEK from configuration), personal-model and fusion with AIMASS_*__PRIVACY__ADDRESS (consent caches fed by ConsentChanged, personal data sealed with users\' keys), updater on NATS',
        off_stack: 'the same without the privacy service: its own nats-server, personal-model, updater and fusion, no consent checks, plaintext payloads',
        shared: 'one general-model process (the default model, batching 64, no queue delay)',
        consent: 'every user granted personalization and training through PrivacyClient.grant before any feedback',
        clients: 'closed loops in the bench process, @aimass/sdk AiMassClient, one channel per stack',
      },
      environment: { ...environment(options.quick), load_average_before: loadBefore, load_average_after: loadAverages() },
    };
  } catch (error) {
    const logs = started
      .map((p) => ({ name: p.name, tail: p.proc.logTail().trim() }))
      .filter((p) => p.tail !== '')
      .map((p) => `--- ${p.name} ---\n${p.tail}`)
      .join('\n');
    throw new Error(`${(error as Error).message}${logs === '' ? '' : `\n${logs}`}`, { cause: error });
  } finally {
    for (const c of clients) c.close();
    for (const p of started.reverse()) await p.proc.close();
    await nats?.dispose();
    await natsOff?.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

/** At most 400 points of the empirical distribution (sorted values at even ranks), for the plot. */
function downsample(samples: Float64Array): number[] {
  const sorted = Float64Array.from(samples).sort();
  if (sorted.length <= 400) return Array.from(sorted, (v) => round(v, 3));
  return Array.from({ length: 400 }, (_, i) => round(sorted[Math.floor(((i + 0.5) / 400) * sorted.length)] as number, 3));
}
