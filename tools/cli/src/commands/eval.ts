import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AiMassClient, PrivacyClient, TrainingAdminClient } from '@aimass/sdk';
import { loadSpamAssassin, type Corpus } from '@aimass/train-general';
import type { EvalCommand } from '../args.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { PlatformUnavailableError } from '../format.js';
import type { CliIo } from '../io.js';
import { startOneProcessPlatform, type LaunchOptions, type StartedPlatform } from '../platform.js';
import { SETTLE_TIMEOUT_S } from '../usage.js';
import { evalMails } from '../eval/corpus.js';
import { writePlot } from '../eval/plot.js';
import { buildUsers } from '../eval/profiles.js';
import { EvalProgress } from '../eval/progress.js';
import { runUser, runUsers, type UserHooks } from '../eval/prequential.js';
import { buildReport, type PersonalizationReport } from '../eval/report.js';
import { askUpdater } from '../eval/settle.js';
import { formatReportTable, formatUsersTable } from '../eval/table.js';
import { sdkTarget, type SdkTargetOptions } from '../eval/target.js';

export interface EvalDependencies {
  loadCorpus: () => Pick<Corpus, 'items' | 'source'>;
  launch: (options: LaunchOptions) => Promise<StartedPlatform>;
  hooks: UserHooks;
  signal?: AbortSignal | undefined;
}

const DEFAULTS: EvalDependencies = {
  loadCorpus: () => loadSpamAssassin(),
  launch: startOneProcessPlatform,
  // Empty: the command records each simulated user's consent itself (see below) when it knows the privacy service.
  hooks: {},
};

/** Where the plot goes: --plot, else beside --json, else eval-results/personalization.svg. */
export function plotPath(options: Pick<EvalCommand, 'plot' | 'json'>, cwd: string): string {
  if (options.plot !== undefined) return resolve(cwd, options.plot);
  if (options.json !== undefined) return resolve(cwd, options.json.replace(/\.json$/, '') + '.svg');
  return resolve(cwd, 'eval-results', 'personalization.svg');
}

/** A run id users' ids can carry: letters, digits and dashes. */
function newRunId(): string {
  return `eval-${randomBytes(3).toString('hex')}`;
}

export async function evalPersonalizationCommand(options: EvalCommand, io: CliIo, deps: Partial<EvalDependencies> = {}): Promise<number> {
  const { loadCorpus, launch, hooks, signal } = { ...DEFAULTS, ...deps };
  const started = performance.now();
  const progress = new EvalProgress((line) => io.stderr.write(`${line}\n`));
  const corpus = loadCorpus();
  const mails = evalMails(corpus);
  const runId = options.runId ?? newRunId();
  const users = buildUsers(mails, {
    usersPerProfile: options.usersPerProfile,
    seed: options.seed,
    streamLength: options.streamLength,
    heldOut: options.heldOut,
    runId,
  });
  progress.note(`${mails.length} mails from ${corpus.source}; ${users.length} users (run ${runId})`);
  if (options.dryRun) {
    io.stdout.write(`${formatUsersTable(users)}\n`);
    return EXIT_OK;
  }

  let platform: StartedPlatform | undefined;
  let tempDir: string | undefined;
  let client: AiMassClient | undefined;
  let admin: TrainingAdminClient | undefined;
  let consent: PrivacyClient | undefined;
  try {
    let address = options.address;
    if (address === undefined) {
      const dataDir = options.dataDir !== undefined ? resolve(io.cwd, options.dataDir) : (tempDir = await mkdtemp(join(tmpdir(), 'aimass-eval-')));
      progress.note(`starting the one-process platform in ${dataDir} (the first start trains the general model)`);
      platform = await launch({ dataDir, env: io.env, stderr: io.stderr });
      address = platform.services.get('fusion');
      if (address === undefined) {
        throw new PlatformUnavailableError(
          `the one-process platform runs ${[...platform.services.keys()].join(', ') || 'no services'} but not fusion (the public API) yet: ` +
            'register it in tools/runner, or pass --address of a platform that serves it',
        );
      }
      progress.note(`platform ready: public API at ${address}`);
    }
    client = new AiMassClient({ address, tenant: options.tenant, apiKey: options.apiKey, defaultDeadlineMs: options.deadlineMs });
    // The started platform's updater is the one its banner lists; a runner without one trains
    // in Feedback itself, so there is nothing to wait for.
    const updater = options.updaterAddress === undefined ? platform?.services.get('updater') : (options.updaterAddress ?? undefined);
    let training: SdkTargetOptions['training'];
    if (updater !== undefined) {
      admin = new TrainingAdminClient({ address: updater, tenant: options.tenant, apiKey: options.apiKey, defaultDeadlineMs: options.deadlineMs });
      training = { client: admin, address: updater, timeoutMs: SETTLE_TIMEOUT_S * 1000 };
      // Asked once up front, so a wrong address fails now rather than at the first checkpoint.
      const lag = (await askUpdater(admin, undefined, updater, { signal })).pendingEvents;
      progress.note(`updater at ${updater} (${lag} feedback events pending): each checkpoint waits until the user's feedback is applied`);
    } else {
      progress.note(
        options.updaterAddress === null
          ? 'not waiting for training (--updater-address none): checkpoints measure right after the last Feedback'
          : 'the platform runs no updater: Feedback trains directly, checkpoints do not wait',
      );
    }
    // Consent as an integration records it: each simulated user opts in to personalization and
    // training before their first call. The platform enforces consent; the eval never turns it off.
    const privacyAddress = platform?.services.get('privacy') ?? io.env['AIMASS_PRIVACY_ADDRESS'];
    let userHooks = hooks;
    if (privacyAddress !== undefined && hooks.prepareUser === undefined) {
      const privacy = (consent = new PrivacyClient({ address: privacyAddress, tenant: options.tenant, apiKey: options.apiKey, defaultDeadlineMs: options.deadlineMs }));
      userHooks = {
        ...hooks,
        prepareUser: async (user) => {
          await privacy.grant(user.id, ['personalization', 'training'], { policyVersion: 'eval-v1', source: 'aimass-eval', idempotencyKey: `${user.id}-consent` });
        },
      };
      progress.note(`privacy at ${privacyAddress}: each user grants personalization and training consent before their first call`);
    } else if (privacyAddress === undefined) {
      progress.note('no privacy service known (set AIMASS_PRIVACY_ADDRESS): consent is not recorded, so a platform that enforces it answers general-only and refuses Feedback');
    }
    const target = sdkTarget(client, { fusedStrategy: options.fusedStrategy, input: options.input, training });
    progress.plan(users.length * (options.checkpoints.length + 1));
    const settings = { checkpoints: options.checkpoints, feedbackShare: options.feedbackShare, seed: options.seed, signal };
    const runs = await runUsers(users, (user) => runUser(user, target, settings, userHooks, (u, c) => progress.checkpoint(u, c)), options.concurrency).catch(
      (err: unknown) => {
        // Ctrl-C reaches the platform too, whose drain then fails calls in flight: report the interruption, not that.
        throw signal?.aborted ? signal.reason : err;
      },
    );

    const report: PersonalizationReport = buildReport({
      runs,
      mails,
      corpusSource: corpus.source,
      settings: {
        seed: options.seed,
        users_per_profile: options.usersPerProfile,
        stream_length: options.streamLength,
        held_out: options.heldOut,
        feedback_share: options.feedbackShare,
        checkpoints: options.checkpoints,
        fused_strategy: options.fusedStrategy,
        input: options.input,
        quick: options.quick,
      },
      platform: { address, started_by_eval: platform !== undefined, updater: updater ?? null },
      tenant: options.tenant,
      runId,
      elapsedMs: performance.now() - started,
    });
    io.stdout.write(`\n${formatReportTable(report)}\n\n`);
    if (options.json !== undefined) {
      const path = resolve(io.cwd, options.json);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
      io.stdout.write(`figures: ${path}\n`);
    }
    const title = `personalization: ${report.settings.fused_strategy} fusion${options.quick ? ' (--quick)' : ''}, ${report.created_at.slice(0, 16)}Z`;
    const plot = await writePlot(plotPath(options, io.cwd), report, title);
    io.stdout.write(`plot: ${plot.png} (and ${plot.svg})\n`);
    return options.strict && report.goals_met !== true ? EXIT_FAILURE : EXIT_OK;
  } finally {
    client?.close();
    admin?.close();
    consent?.close();
    if (platform) {
      progress.note('stopping the platform');
      await platform.stop();
    }
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  }
}
