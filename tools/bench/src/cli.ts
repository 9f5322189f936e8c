import { parseArgs } from 'node:util';
import type { GeneralSuiteOptions } from './suites/general.js';
import type { PersonalSuiteOptions } from './suites/personal.js';
import { PERSONAL_PARTS, type PersonalPart } from './suites/personal/parts.js';
import type { PrivacySuiteOptions } from './suites/privacy.js';
import type { TenancySuiteOptions } from './suites/tenancy.js';
import type { UpdatesSuiteOptions } from './suites/updates.js';

export const SUITES = ['general', 'personal', 'updates', 'privacy', 'tenancy'] as const;
export type SuiteName = (typeof SUITES)[number];

export const EXIT_OK = 0;
/** The run itself failed (a contender would not start, a measurement errored). */
export const EXIT_FAILED = 1;
/** Bad command line. */
export const EXIT_USAGE = 2;

export const USAGE = `usage: npm run bench -- <suite> [options]

suites:
  general            the general-model service against its limits (echo transport, raw onnxruntime)
                     and a naive grpc-js server, on the default, medium and heavy models
  personal           Predict through fusion (general + personal + fusion, each its own process)
                     against Classify on general-model alone; a million users' personal models in
                     SQLite under Zipf traffic: cache hit ratio, cold loads, bytes per model
  updates            feedback through fusion → NATS JetStream → updater → personal-model (each its own
                     process) at a fixed rate with Predict load running: freshness (Feedback returned →
                     first Predict showing the new personal model version), update throughput, lag
  privacy            the whole platform with consent enforced and data sealed against the same without
                     the privacy service: consent-check cost on Predict (p50 on − off), and Erase →
                     complete receipt under Predict load
  tenancy            noisy neighbour: general-model, personal-model and fusion (each its own process),
                     tenant B's Predict p99 alone and while tenant A floods far above its quota
                     (neighbour_p99_ratio), B's throughput both ways, A's accepted and refused rates

options (every suite):
  --json FILE        also write the figures as JSON to FILE (plot beside it as .svg and .png)
  --quick            short measurements: a smoke run, figures are noisy
  --duration S       seconds measured (general, personal: per sweep point, default 8, --quick 1;
                     updates: the whole window, default 60, --quick 15; privacy: the overhead
                     slices together, default 40, --quick 8; tenancy: each window, default 10, --quick 2)
  --workers N        general-model worker threads (default 2, the service's default on 2 cores)
  --intra-op N       onnxruntime intra-op threads per general-model worker (default 1, the service's default)

general and personal suites:
  --concurrency LIST concurrency sweep (default 1,4,16,64; the largest is the headline)
  --connections N    HTTP/2 connections the load clients share at most (default 4)
  --rounds N         rounds at the headline concurrency, every contender back to back in each; the
                     ratios are the median round's (default 3, --quick 1)

general suite:
  --models LIST      comma-separated subset of default,medium,heavy (default: all three)
  --heavy-blocks N   feed-forward blocks of the heavy model (default 1; 4.8 GFLOP/row at 4)
  --heavy-input KIND what a heavy row is: token_ids (default; int64 [1,128] that the model embeds,
                     as BERT-style exports take) or embeddings (float32 [1,128,768], 393 KB per row)
  --max-batch N      the service's max_batch_size for every model (default per model: 16, 64, 4)
  --queue-delay-ms X the service's max queue delay for every model (default per model)

personal suite:
  --parts LIST       fusion,store (default both): fused vs general-only, the million-user store
  --users N          users of the fusion part (default 2000, --quick 200)
  --model-share X    share of them with a personal model (default 0.3)
  --examples-max N   most feedback examples a user gave (default 200)
  --examples-s X     Zipf exponent of the examples per user over 1..max (default 1.5)
  --zipf-s X         Zipf exponent of the traffic over users (default 1.0)
  --store-users N    users in the store (default 1000000, --quick 20000)
  --pool-variants N  trained models per example count in the store's pool (default 3, --quick 1)
  --store-duration S seconds measured per store run (default 20, --quick 2)
  --store-clients N  concurrent Score clients against the store (default 64)
  --cold-loads N     cold loads timed (default 2000, --quick 300)

updates suite:
  --users N          users the feedback is spread over (default 1000, --quick 100)
  --rate N           feedback events per second offered (default 200, --quick 50)
  --predict-clients N concurrent Predict clients running throughout (default 4)
  --probe-share X    share of users whose every event is timed for freshness (default 0.1, --quick 0.2)
  --poll-ms N        pause between the Predicts that look for a user's new version (default 15)

privacy suite:
  --users N          consenting users with a personal model that Predict runs over (default 200, --quick 40)
  --erasures N       users erased under load (default 100, --quick 20)
  --erasure-concurrency N  erasures in flight at once (default 4)
  --overhead-clients N Predict clients of the on/off comparison (default 1: each call's own cost, no queueing)
  --predict-clients N concurrent Predict clients loading the platform during the erasures (default 8)

tenancy suite:
  --b-rate N         tenant B's Predicts per second, open loop (default 100)
  --flood-clients N  tenant A's closed-loop clients (default 32)
  --quota N          tenant A's rate quota on fusion, calls per second (default 50)

  --help             this text

The plot is written to bench-results/<suite>.png unless --json names another place.
Exit codes: 0 done (goals are reported, not enforced), 1 the run failed, 2 bad usage.`;

type Common = { readonly json: string | undefined };
type Injected = 'cacheDir' | 'progress' | 'load';

/** Each suite's own options (see its *SuiteOptions for what each means), plus what the CLI adds. */
export type CliOptions =
  | (Common & { readonly suite: 'general' } & Omit<GeneralSuiteOptions, Injected>)
  | (Common & { readonly suite: 'personal' } & Omit<PersonalSuiteOptions, Injected>)
  | (Common & { readonly suite: 'updates' } & Omit<UpdatesSuiteOptions, 'cacheDir' | 'progress'>)
  | (Common & { readonly suite: 'privacy' } & Omit<PrivacySuiteOptions, 'cacheDir' | 'progress'>)
  | (Common & { readonly suite: 'tenancy' } & Omit<TenancySuiteOptions, Injected>);

export type ParsedCli = { readonly kind: 'help' } | { readonly kind: 'run'; readonly options: CliOptions } | { readonly kind: 'error'; readonly message: string };

const GENERAL_ONLY = ['models', 'heavy-blocks', 'heavy-input', 'max-batch', 'queue-delay-ms'] as const;
const PERSONAL_ONLY = ['parts', 'users', 'model-share', 'examples-max', 'examples-s', 'zipf-s', 'store-users', 'pool-variants', 'store-duration', 'store-clients', 'cold-loads'] as const;
const SWEEP = ['concurrency', 'connections', 'rounds'] as const;
const UPDATES_OWN = ['users', 'rate', 'predict-clients', 'probe-share', 'poll-ms'] as const;
const PRIVACY_OWN = ['users', 'erasures', 'erasure-concurrency', 'predict-clients', 'overhead-clients'] as const;
const TENANCY_OWN = ['b-rate', 'flood-clients', 'quota'] as const;

/** Options of other suites, which a suite refuses rather than silently ignoring them. */
function foreignOptions(suite: SuiteName): readonly string[] {
  const own: Record<SuiteName, readonly string[]> = { general: [...GENERAL_ONLY, ...SWEEP], personal: [...PERSONAL_ONLY, ...SWEEP], updates: UPDATES_OWN, privacy: PRIVACY_OWN, tenancy: TENANCY_OWN };
  const all = new Set<string>([...GENERAL_ONLY, ...PERSONAL_ONLY, ...SWEEP, ...UPDATES_OWN, ...PRIVACY_OWN, ...TENANCY_OWN]);
  for (const name of own[suite]) all.delete(name);
  return [...all];
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}

function wholeNumberUpTo(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new Error(`${name} must be a whole number from 0 to ${max}, got "${value}"`);
  return n;
}

function numberIn(name: string, value: string, min: number, max: number, inclusiveMin = true): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n > max || (inclusiveMin ? n < min : n <= min)) throw new Error(`${name} must be a number ${inclusiveMin ? '>=' : '>'} ${min} and <= ${max}, got "${value}"`);
  return n;
}

export function parseCli(argv: readonly string[]): ParsedCli {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'string' },
        quick: { type: 'boolean', default: false },
        models: { type: 'string' },
        'heavy-blocks': { type: 'string' },
        'heavy-input': { type: 'string' },
        concurrency: { type: 'string' },
        duration: { type: 'string' },
        workers: { type: 'string' },
        'intra-op': { type: 'string' },
        connections: { type: 'string' },
        'max-batch': { type: 'string' },
        'queue-delay-ms': { type: 'string' },
        parts: { type: 'string' },
        users: { type: 'string' },
        'model-share': { type: 'string' },
        'examples-max': { type: 'string' },
        'examples-s': { type: 'string' },
        'zipf-s': { type: 'string' },
        'store-users': { type: 'string' },
        'pool-variants': { type: 'string' },
        'store-duration': { type: 'string' },
        'store-clients': { type: 'string' },
        rounds: { type: 'string' },
        'cold-loads': { type: 'string' },
        rate: { type: 'string' },
        'predict-clients': { type: 'string' },
        'probe-share': { type: 'string' },
        'poll-ms': { type: 'string' },
        erasures: { type: 'string' },
        'erasure-concurrency': { type: 'string' },
        'overhead-clients': { type: 'string' },
        'b-rate': { type: 'string' },
        'flood-clients': { type: 'string' },
        quota: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) return { kind: 'help' };
    if (positionals.length !== 1) return { kind: 'error', message: positionals.length === 0 ? 'missing suite name' : `one suite at a time, got ${positionals.join(' ')}` };
    const suite = positionals[0] as string;
    if (!(SUITES as readonly string[]).includes(suite)) return { kind: 'error', message: `unknown suite "${suite}" (known: ${SUITES.join(', ')})` };
    for (const name of foreignOptions(suite as SuiteName)) if (values[name as keyof typeof values] !== undefined) return { kind: 'error', message: `--${name} is not an option of the ${suite} suite` };

    const concurrency = (values.concurrency ?? '1,4,16,64').split(',').map((c) => positiveInt('--concurrency', c.trim()));
    const duration = values.duration === undefined ? undefined : Number(values.duration);
    if (duration !== undefined && !(duration > 0)) return { kind: 'error', message: `--duration must be a positive number of seconds, got "${values.duration}"` };
    const common = {
      json: values.json,
      quick: values.quick,
      concurrency: [...new Set(concurrency)].sort((a, b) => a - b),
      durationS: duration,
      workers: values.workers === undefined ? 2 : positiveInt('--workers', values.workers),
      intraOp: values['intra-op'] === undefined ? 1 : positiveInt('--intra-op', values['intra-op']),
      connections: values.connections === undefined ? 4 : positiveInt('--connections', values.connections),
      rounds: values.rounds === undefined ? undefined : positiveInt('--rounds', values.rounds),
    };
    const optionalInt = (name: string, value: string | undefined): number | undefined => (value === undefined ? undefined : positiveInt(`--${name}`, value));

    if (suite === 'tenancy') {
      return {
        kind: 'run',
        options: {
          suite: 'tenancy',
          json: common.json,
          quick: common.quick,
          durationS: common.durationS,
          workers: common.workers,
          intraOp: common.intraOp,
          bRate: values['b-rate'] === undefined ? undefined : numberIn('--b-rate', values['b-rate'], 0, 100_000, false),
          floodClients: values['flood-clients'] === undefined ? 32 : positiveInt('--flood-clients', values['flood-clients']),
          quotaPerS: values.quota === undefined ? 50 : numberIn('--quota', values.quota, 0, 1_000_000, false),
        },
      };
    }

    if (suite === 'privacy') {
      return {
        kind: 'run',
        options: {
          suite: 'privacy',
          json: common.json,
          quick: common.quick,
          durationS: common.durationS,
          workers: common.workers,
          intraOp: common.intraOp,
          users: optionalInt('users', values.users),
          erasures: optionalInt('erasures', values.erasures),
          erasureConcurrency: values['erasure-concurrency'] === undefined ? 4 : positiveInt('--erasure-concurrency', values['erasure-concurrency']),
          predictClients: values['predict-clients'] === undefined ? 8 : positiveInt('--predict-clients', values['predict-clients']),
          overheadClients: values['overhead-clients'] === undefined ? 1 : positiveInt('--overhead-clients', values['overhead-clients']),
        },
      };
    }

    if (suite === 'updates') {
      return {
        kind: 'run',
        options: {
          suite: 'updates',
          json: common.json,
          quick: common.quick,
          durationS: common.durationS,
          workers: common.workers,
          intraOp: common.intraOp,
          users: optionalInt('users', values.users),
          rate: values.rate === undefined ? undefined : numberIn('--rate', values.rate, 0, 100_000, false),
          predictClients: values['predict-clients'] === undefined ? 4 : wholeNumberUpTo('--predict-clients', values['predict-clients'], 256),
          probeShare: values['probe-share'] === undefined ? undefined : numberIn('--probe-share', values['probe-share'], 0, 1, false),
          pollMs: values['poll-ms'] === undefined ? 15 : positiveInt('--poll-ms', values['poll-ms']),
        },
      };
    }

    if (suite === 'personal') {
      const parts = (values.parts ?? PERSONAL_PARTS.join(',')).split(',').map((p) => p.trim());
      for (const p of parts) if (!(PERSONAL_PARTS as readonly string[]).includes(p)) return { kind: 'error', message: `unknown part "${p}" (known: ${PERSONAL_PARTS.join(', ')})` };
      const storeDuration = values['store-duration'] === undefined ? undefined : numberIn('--store-duration', values['store-duration'], 0, 3600, false);
      return {
        kind: 'run',
        options: {
          suite: 'personal',
          ...common,
          parts: [...new Set(parts)] as PersonalPart[],
          users: optionalInt('users', values.users),
          modelShare: values['model-share'] === undefined ? 0.3 : numberIn('--model-share', values['model-share'], 0, 1),
          examplesMax: values['examples-max'] === undefined ? 200 : positiveInt('--examples-max', values['examples-max']),
          examplesS: values['examples-s'] === undefined ? 1.5 : numberIn('--examples-s', values['examples-s'], 0, 10),
          zipfS: values['zipf-s'] === undefined ? 1 : numberIn('--zipf-s', values['zipf-s'], 0, 10),
          storeUsers: optionalInt('store-users', values['store-users']),
          poolVariants: optionalInt('pool-variants', values['pool-variants']),
          storeDurationS: storeDuration,
          storeClients: values['store-clients'] === undefined ? 64 : positiveInt('--store-clients', values['store-clients']),
          coldLoads: optionalInt('cold-loads', values['cold-loads']),
        },
      };
    }

    const models = (values.models ?? 'default,medium,heavy').split(',').map((m) => m.trim());
    for (const m of models) if (!['default', 'medium', 'heavy'].includes(m)) return { kind: 'error', message: `unknown model "${m}" (known: default, medium, heavy)` };
    const heavyInput = values['heavy-input'] ?? 'token_ids';
    if (heavyInput !== 'token_ids' && heavyInput !== 'embeddings') return { kind: 'error', message: `--heavy-input must be token_ids or embeddings, got "${heavyInput}"` };
    const queueDelay = values['queue-delay-ms'] === undefined ? undefined : Number(values['queue-delay-ms']);
    if (queueDelay !== undefined && !(queueDelay >= 0)) return { kind: 'error', message: `--queue-delay-ms must be a number >= 0, got "${values['queue-delay-ms']}"` };
    return {
      kind: 'run',
      options: {
        suite: 'general',
        ...common,
        models: models as GeneralSuiteOptions['models'],
        heavyBlocks: values['heavy-blocks'] === undefined ? 1 : positiveInt('--heavy-blocks', values['heavy-blocks']),
        heavyInput,
        maxBatch: values['max-batch'] === undefined ? undefined : positiveInt('--max-batch', values['max-batch']),
        queueDelayMs: queueDelay,
      },
    };
  } catch (error) {
    return { kind: 'error', message: error instanceof Error ? error.message : String(error) };
  }
}
