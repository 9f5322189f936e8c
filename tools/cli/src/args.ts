import { parseArgs } from 'node:util';
import { CONSENT_PURPOSES, STRATEGIES, type ConsentPurpose, type ConsentState, type GeneralModelRef, type Strategy } from '@aimass/sdk';
import {
  CONSENT_DENY_USAGE,
  CONSENT_GRANT_USAGE,
  CONSENT_HISTORY_USAGE,
  CONSENT_SHOW_USAGE,
  CONSENT_USAGE,
  CONSENT_WITHDRAW_USAGE,
  DEFAULT_ADDRESS,
  DEFAULT_PRIVACY_ADDRESS,
  DEFAULT_TENANT,
  DEFAULT_UPDATER_ADDRESS,
  DEV_USAGE,
  ERASE_TIMEOUT_S,
  ERASE_USAGE,
  EXPORT_USAGE,
  EVAL_USAGE,
  FEEDBACK_USAGE,
  MAIN_USAGE,
  MODELS_REFIT_USAGE,
  MODELS_STATE_USAGE,
  MODELS_USAGE,
  PREDICT_USAGE,
  RECEIPT_USAGE,
} from './usage.js';

/** A command line the user must fix; `usage` is the help of the command it was meant for. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

export interface ConnectionOptions {
  address: string;
  tenant: string;
  apiKey: string | undefined;
  deadlineMs: number;
}

/** What to classify or label: text, or a mail file (`-` for stdin). */
export type InputSource = { text: string } | { mailFile: string };

export interface PredictCommand {
  connection: ConnectionOptions;
  user: string;
  input: InputSource;
  strategy: Strategy | undefined;
  topK: number | undefined;
  components: boolean;
  json: boolean;
}

export interface FeedbackCommand {
  connection: ConnectionOptions;
  user: string;
  target: { predictionId: string } | InputSource;
  label: string;
  idempotencyKey: string | undefined;
  occurredAt: Date | undefined;
  json: boolean;
}

export type FusedStrategy = 'default' | 'interpolate' | 'stacking' | 'override';

export interface EvalCommand {
  /** Undefined: start the one-process platform. */
  address: string | undefined;
  tenant: string;
  apiKey: string | undefined;
  deadlineMs: number;
  json: string | undefined;
  plot: string | undefined;
  usersPerProfile: number;
  seed: number;
  quick: boolean;
  streamLength: number;
  heldOut: number;
  feedbackShare: number;
  checkpoints: number[];
  fusedStrategy: FusedStrategy;
  input: 'mail' | 'raw';
  concurrency: number;
  runId: string | undefined;
  dataDir: string | undefined;
  /**
   * The updater asked whether a user's feedback is applied before a checkpoint. undefined: the
   * default (the started platform's updater if it runs one; with --address,
   * AIMASS_UPDATER_ADDRESS or 127.0.0.1:50054); null: do not wait (Feedback trains directly).
   */
  updaterAddress: string | null | undefined;
  dryRun: boolean;
  strict: boolean;
}

export interface ModelsRefitCommand {
  /** The updater's admin API. */
  connection: ConnectionOptions;
  /** One user, or the tenant's users (only those paired with another general version unless includeCurrent). */
  scope: { user: string } | { all: true; includeCurrent: boolean };
  /** undefined: the tenant's current general model. */
  generalModel: GeneralModelRef | undefined;
  wait: boolean;
  json: boolean;
}

export interface ModelsStateCommand {
  /** The updater's admin API. */
  connection: ConnectionOptions;
  user: string | undefined;
  json: boolean;
}

/** The source recorded with a consent decision made through the CLI unless --source says otherwise. */
export const CLI_CONSENT_SOURCE = 'aimass-cli';

export interface ConsentSetCommand {
  /** The privacy API. */
  connection: ConnectionOptions;
  user: string;
  state: ConsentState;
  /** In the order given, without repeats. */
  purposes: ConsentPurpose[];
  policyVersion: string;
  source: string;
  json: boolean;
}

export interface ConsentShowCommand {
  connection: ConnectionOptions;
  user: string;
  /** Empty: every purpose. */
  purposes: ConsentPurpose[];
  json: boolean;
}

export interface ConsentHistoryCommand {
  connection: ConnectionOptions;
  user: string;
  purpose: ConsentPurpose | undefined;
  json: boolean;
}

export interface EraseCommand {
  connection: ConnectionOptions;
  user: string;
  reason: string | undefined;
  /** undefined: do not wait; else how long to wait for every service to confirm. */
  waitS: number | undefined;
  json: boolean;
}

export interface ReceiptCommand {
  connection: ConnectionOptions;
  erasureId: string;
  json: boolean;
}

export interface ExportCommand {
  connection: ConnectionOptions;
  user: string;
  /** undefined: stdout. */
  out: string | undefined;
}

export type ParsedCommand =
  | { kind: 'help'; text: string }
  | { kind: 'dev'; dataDir: string | undefined }
  | { kind: 'predict'; options: PredictCommand }
  | { kind: 'feedback'; options: FeedbackCommand }
  | { kind: 'eval-personalization'; options: EvalCommand }
  | { kind: 'models-refit'; options: ModelsRefitCommand }
  | { kind: 'models-state'; options: ModelsStateCommand }
  | { kind: 'consent-set'; options: ConsentSetCommand }
  | { kind: 'consent-show'; options: ConsentShowCommand }
  | { kind: 'consent-history'; options: ConsentHistoryCommand }
  | { kind: 'erase'; options: EraseCommand }
  | { kind: 'receipt'; options: ReceiptCommand }
  | { kind: 'export'; options: ExportCommand };

type Env = Readonly<Record<string, string | undefined>>;

const CONNECTION_OPTIONS = {
  address: { type: 'string' },
  tenant: { type: 'string' },
  'api-key': { type: 'string' },
  'deadline-ms': { type: 'string' },
} as const;

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** Runs a parseArgs call, turning its errors into a UsageError for `usage`. */
function parsing<T>(parse: () => T, usage: string): T {
  try {
    return parse();
  } catch (err) {
    // node's messages name the option ("Unknown option '--foo'"); the hint to --help is ours.
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), usage);
  }
}

function integer(name: string, value: string, min: number, max: number, usage: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`, usage);
  }
  return n;
}

function fraction(name: string, value: string, usage: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new UsageError(`${name} must be a number from 0 to 1, got "${value}"`, usage);
  return n;
}

function nonEmpty(name: string, value: string | undefined, usage: string): string | undefined {
  if (value !== undefined && value.trim() === '') throw new UsageError(`${name} must not be empty`, usage);
  return value;
}

/** Where each service's commands go when --address is not given: its variable, else where `aimass dev` serves it. */
function defaultAddress(service: 'fusion' | 'updater' | 'privacy', env: Env): string {
  switch (service) {
    case 'updater':
      return env.AIMASS_UPDATER_ADDRESS || DEFAULT_UPDATER_ADDRESS;
    case 'privacy':
      return env.AIMASS_PRIVACY_ADDRESS || DEFAULT_PRIVACY_ADDRESS;
    default:
      return env.AIMASS_ADDRESS || DEFAULT_ADDRESS;
  }
}

/** The connection options; the address defaults to the public API's (fusion), or the updater's for `models`, privacy's for consent, erasure and export. */
function connection(values: Record<string, unknown>, env: Env, usage: string, service: 'fusion' | 'updater' | 'privacy' = 'fusion'): ConnectionOptions {
  const fallback = defaultAddress(service, env);
  const address = nonEmpty('--address', values.address as string | undefined, usage) ?? fallback;
  const tenant = nonEmpty('--tenant', values.tenant as string | undefined, usage) ?? (env.AIMASS_TENANT || DEFAULT_TENANT);
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(tenant)) {
    throw new UsageError(`--tenant "${tenant}" is not a tenant id: use 1-63 lower-case letters, digits and dashes`, usage);
  }
  const apiKey = nonEmpty('--api-key', values['api-key'] as string | undefined, usage) ?? (env.AIMASS_API_KEY || undefined);
  const deadline = values['deadline-ms'] as string | undefined;
  const deadlineMs = deadline === undefined ? 5_000 : integer('--deadline-ms', deadline, 1, 3_600_000, usage);
  return { address, tenant, apiKey, deadlineMs };
}

function inputSource(values: { text?: string | undefined; 'mail-file'?: string | undefined }, usage: string, alsoAllowed = ''): InputSource | undefined {
  const given = [values.text !== undefined, values['mail-file'] !== undefined].filter(Boolean).length;
  if (given > 1) throw new UsageError(`give one of --text and --mail-file${alsoAllowed}, not several`, usage);
  if (values.text !== undefined) return { text: values.text };
  if (values['mail-file'] !== undefined) return { mailFile: nonEmpty('--mail-file', values['mail-file'], usage)! };
  return undefined;
}

function required(name: string, value: string | undefined, usage: string): string {
  if (value === undefined) throw new UsageError(`${name} is required`, usage);
  if (value.trim() === '') throw new UsageError(`${name} must not be empty`, usage);
  return value;
}

function strategy(value: string | undefined, usage: string): Strategy | undefined {
  if (value === undefined) return undefined;
  if (!(STRATEGIES as readonly string[]).includes(value)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}, got "${value}"`, usage);
  return value as Strategy;
}

function parsePredict(argv: readonly string[], env: Env): ParsedCommand {
  const usage = PREDICT_USAGE;
  const { values } = parsing(
    () =>
      parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: {
          ...CONNECTION_OPTIONS,
          ...HELP,
          user: { type: 'string' },
          text: { type: 'string' },
          'mail-file': { type: 'string' },
          strategy: { type: 'string' },
          'top-k': { type: 'string' },
          components: { type: 'boolean' },
          json: { type: 'boolean' },
        },
      }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = required('--user', values.user, usage);
  const input = inputSource(values, usage);
  if (!input) throw new UsageError('what to classify is missing: give --text T or --mail-file FILE', usage);
  return {
    kind: 'predict',
    options: {
      connection: connection(values, env, usage),
      user,
      input,
      strategy: strategy(values.strategy, usage),
      topK: values['top-k'] === undefined ? undefined : integer('--top-k', values['top-k'], 1, 1_000, usage),
      components: values.components ?? false,
      json: values.json ?? false,
    },
  };
}

function parseFeedback(argv: readonly string[], env: Env): ParsedCommand {
  const usage = FEEDBACK_USAGE;
  const { values } = parsing(
    () =>
      parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: {
          ...CONNECTION_OPTIONS,
          ...HELP,
          user: { type: 'string' },
          'prediction-id': { type: 'string' },
          text: { type: 'string' },
          'mail-file': { type: 'string' },
          label: { type: 'string' },
          'idempotency-key': { type: 'string' },
          'occurred-at': { type: 'string' },
          json: { type: 'boolean' },
        },
      }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = required('--user', values.user, usage);
  const input = inputSource(values, usage, ' and --prediction-id');
  const predictionId = nonEmpty('--prediction-id', values['prediction-id'], usage);
  if (predictionId !== undefined && input) throw new UsageError('give one of --prediction-id, --text and --mail-file, not several', usage);
  if (predictionId === undefined && !input) {
    throw new UsageError('what the feedback is about is missing: give --prediction-id P (from `aimass predict`), --text T or --mail-file FILE', usage);
  }
  const label = required('--label', values.label, usage);
  let occurredAt: Date | undefined;
  if (values['occurred-at'] !== undefined) {
    occurredAt = new Date(values['occurred-at']);
    if (Number.isNaN(occurredAt.getTime())) throw new UsageError(`--occurred-at must be an ISO 8601 time such as 2024-05-01T10:00:00Z, got "${values['occurred-at']}"`, usage);
  }
  return {
    kind: 'feedback',
    options: {
      connection: connection(values, env, usage),
      user,
      target: predictionId !== undefined ? { predictionId } : input!,
      label,
      idempotencyKey: nonEmpty('--idempotency-key', values['idempotency-key'], usage),
      occurredAt,
      json: values.json ?? false,
    },
  };
}

const FUSED: readonly FusedStrategy[] = ['default', 'interpolate', 'stacking', 'override'];

function parseEval(argv: readonly string[], env: Env): ParsedCommand {
  const usage = EVAL_USAGE;
  const [suite, ...rest] = argv;
  if (suite === '--help' || suite === '-h') return { kind: 'help', text: usage };
  if (suite === undefined || suite.startsWith('-')) throw new UsageError('which evaluation? (known: personalization)', usage);
  if (suite !== 'personalization') throw new UsageError(`unknown evaluation "${suite}" (known: personalization)`, usage);
  const { values } = parsing(
    () =>
      parseArgs({
        args: [...rest],
        strict: true,
        allowPositionals: false,
        options: {
          ...CONNECTION_OPTIONS,
          ...HELP,
          json: { type: 'string' },
          plot: { type: 'string' },
          'users-per-profile': { type: 'string' },
          seed: { type: 'string' },
          quick: { type: 'boolean' },
          'stream-length': { type: 'string' },
          'held-out': { type: 'string' },
          'feedback-share': { type: 'string' },
          checkpoints: { type: 'string' },
          'fused-strategy': { type: 'string' },
          input: { type: 'string' },
          concurrency: { type: 'string' },
          'run-id': { type: 'string' },
          'data-dir': { type: 'string' },
          'updater-address': { type: 'string' },
          'dry-run': { type: 'boolean' },
          strict: { type: 'boolean' },
        },
      }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const quick = values.quick ?? false;
  const conn = connection({ ...values, address: values.address ?? DEFAULT_ADDRESS }, env, usage);
  const checkpoints = (values.checkpoints ?? (quick ? '10,50' : '10,50,200'))
    .split(',')
    .map((c) => integer('--checkpoints', c.trim(), 1, 100_000, usage));
  const fusedStrategy = values['fused-strategy'] ?? 'default';
  if (!(FUSED as readonly string[]).includes(fusedStrategy)) throw new UsageError(`--fused-strategy must be one of ${FUSED.join(', ')}, got "${fusedStrategy}"`, usage);
  const input = values.input ?? 'mail';
  if (input !== 'mail' && input !== 'raw') throw new UsageError(`--input must be mail or raw, got "${input}"`, usage);
  const runId = nonEmpty('--run-id', values['run-id'], usage);
  if (runId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/.test(runId)) {
    throw new UsageError(`--run-id must be 1-40 letters, digits, dots, dashes or underscores, got "${runId}"`, usage);
  }
  if (values.json !== undefined && values.json.trim() === '') throw new UsageError('--json needs a file name', usage);
  if (values.plot !== undefined && !values.plot.endsWith('.svg')) throw new UsageError(`--plot must name an .svg file (the PNG is written beside it), got "${values.plot}"`, usage);
  // Only an explicit --address (or AIMASS_ADDRESS) means "use that platform".
  const address = values.address ?? (env.AIMASS_ADDRESS || undefined);
  const updater = nonEmpty('--updater-address', values['updater-address'], usage);
  return {
    kind: 'eval-personalization',
    options: {
      address,
      tenant: conn.tenant,
      apiKey: conn.apiKey,
      deadlineMs: values['deadline-ms'] === undefined ? 30_000 : conn.deadlineMs,
      json: values.json,
      plot: values.plot,
      usersPerProfile: values['users-per-profile'] === undefined ? (quick ? 1 : 2) : integer('--users-per-profile', values['users-per-profile'], 1, 50, usage),
      seed: values.seed === undefined ? 1 : integer('--seed', values.seed, 0, 0xffffffff, usage),
      quick,
      streamLength: values['stream-length'] === undefined ? (quick ? 800 : 2_400) : integer('--stream-length', values['stream-length'], 10, 100_000, usage),
      heldOut: values['held-out'] === undefined ? (quick ? 150 : 600) : integer('--held-out', values['held-out'], 10, 100_000, usage),
      feedbackShare: values['feedback-share'] === undefined ? 0.1 : fraction('--feedback-share', values['feedback-share'], usage),
      checkpoints: [...new Set(checkpoints)].sort((a, b) => a - b),
      fusedStrategy: fusedStrategy as FusedStrategy,
      input,
      concurrency: values.concurrency === undefined ? 4 : integer('--concurrency', values.concurrency, 1, 64, usage),
      runId,
      dataDir: nonEmpty('--data-dir', values['data-dir'], usage),
      // The started platform's own updater is known only once it runs (from its banner); with
      // --address, the environment's updater is meant.
      updaterAddress: updater === 'none' ? null : (updater ?? (address === undefined ? undefined : env.AIMASS_UPDATER_ADDRESS || DEFAULT_UPDATER_ADDRESS)),
      dryRun: values['dry-run'] ?? false,
      strict: values.strict ?? false,
    },
  };
}

/** NAME[:VERSION] (NAME@VERSION, as outputs show it, works too); NAME alone means its current version. */
function generalModel(value: string | undefined, usage: string): GeneralModelRef | undefined {
  if (value === undefined) return undefined;
  const m = /^([^\s:@]+)(?:[:@]([^\s:@]+))?$/.exec(value.trim());
  if (!m) throw new UsageError(`--general-model must be NAME or NAME:VERSION, e.g. general:3, got "${value}"`, usage);
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, version: m[2] };
}

function parseModelsRefit(argv: readonly string[], env: Env): ParsedCommand {
  const usage = MODELS_REFIT_USAGE;
  const { values } = parsing(
    () =>
      parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: {
          ...CONNECTION_OPTIONS,
          ...HELP,
          user: { type: 'string' },
          all: { type: 'boolean' },
          'include-current': { type: 'boolean' },
          'general-model': { type: 'string' },
          wait: { type: 'boolean' },
          json: { type: 'boolean' },
        },
      }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = nonEmpty('--user', values.user, usage);
  const all = values.all ?? false;
  if (user !== undefined && all) throw new UsageError('give one of --user and --all, not both', usage);
  if (user === undefined && !all) throw new UsageError('whose model? give --user ID, or --all for every stale user', usage);
  if (values['include-current'] && !all) throw new UsageError('--include-current goes with --all', usage);
  return {
    kind: 'models-refit',
    options: {
      connection: connection(values, env, usage, 'updater'),
      scope: user !== undefined ? { user } : { all: true, includeCurrent: values['include-current'] ?? false },
      generalModel: generalModel(values['general-model'], usage),
      wait: values.wait ?? false,
      json: values.json ?? false,
    },
  };
}

function parseModelsState(argv: readonly string[], env: Env): ParsedCommand {
  const usage = MODELS_STATE_USAGE;
  const { values } = parsing(
    () =>
      parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: { ...CONNECTION_OPTIONS, ...HELP, user: { type: 'string' }, json: { type: 'boolean' } },
      }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  return {
    kind: 'models-state',
    options: { connection: connection(values, env, usage, 'updater'), user: nonEmpty('--user', values.user, usage), json: values.json ?? false },
  };
}

function parseModels(argv: readonly string[], env: Env): ParsedCommand {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') return { kind: 'help', text: MODELS_USAGE };
  if (sub === undefined || sub.startsWith('-')) throw new UsageError('which models command? (refit, state)', MODELS_USAGE);
  if (sub === 'refit') return parseModelsRefit(rest, env);
  if (sub === 'state') return parseModelsState(rest, env);
  throw new UsageError(`unknown models command "${sub}" (refit, state)`, MODELS_USAGE);
}

/** A comma-separated list of purposes, in the order given, without repeats. */
function purposeList(name: string, value: string, usage: string): ConsentPurpose[] {
  const items = value.split(',').map((p) => p.trim());
  const unknown = items.filter((p) => !(CONSENT_PURPOSES as readonly string[]).includes(p));
  if (unknown.length > 0 || items.length === 0) {
    throw new UsageError(`${name} must name purposes among ${CONSENT_PURPOSES.join(', ')} (comma-separated), got "${value}"`, usage);
  }
  return [...new Set(items as ConsentPurpose[])];
}

const PRIVACY_OPTIONS = { ...CONNECTION_OPTIONS, ...HELP, json: { type: 'boolean' } } as const;

const SET_USAGE: Record<'grant' | 'deny' | 'withdraw', string> = { grant: CONSENT_GRANT_USAGE, deny: CONSENT_DENY_USAGE, withdraw: CONSENT_WITHDRAW_USAGE };
const SET_STATE: Record<'grant' | 'deny' | 'withdraw', ConsentState> = { grant: 'granted', deny: 'denied', withdraw: 'withdrawn' };

function parseConsentSet(verb: 'grant' | 'deny' | 'withdraw', argv: readonly string[], env: Env): ParsedCommand {
  const usage = SET_USAGE[verb];
  const { values } = parsing(
    () =>
      parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: { ...PRIVACY_OPTIONS, user: { type: 'string' }, purpose: { type: 'string' }, 'policy-version': { type: 'string' }, source: { type: 'string' } },
      }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = required('--user', values.user, usage);
  const purposes = purposeList('--purpose', required('--purpose', values.purpose, usage), usage);
  const policyVersion = nonEmpty('--policy-version', values['policy-version'], usage) ?? (env.AIMASS_POLICY_VERSION || undefined);
  if (policyVersion === undefined) {
    throw new UsageError('--policy-version is required: the version of the policy text the user saw (or set $AIMASS_POLICY_VERSION)', usage);
  }
  return {
    kind: 'consent-set',
    options: {
      connection: connection(values, env, usage, 'privacy'),
      user,
      state: SET_STATE[verb],
      purposes,
      policyVersion,
      source: nonEmpty('--source', values.source, usage) ?? CLI_CONSENT_SOURCE,
      json: values.json ?? false,
    },
  };
}

function parseConsentShow(argv: readonly string[], env: Env): ParsedCommand {
  const usage = CONSENT_SHOW_USAGE;
  const { values } = parsing(
    () => parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: { ...PRIVACY_OPTIONS, user: { type: 'string' }, purpose: { type: 'string' } } }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = required('--user', values.user, usage);
  return {
    kind: 'consent-show',
    options: {
      connection: connection(values, env, usage, 'privacy'),
      user,
      purposes: values.purpose === undefined ? [] : purposeList('--purpose', values.purpose, usage),
      json: values.json ?? false,
    },
  };
}

function parseConsentHistory(argv: readonly string[], env: Env): ParsedCommand {
  const usage = CONSENT_HISTORY_USAGE;
  const { values } = parsing(
    () => parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: { ...PRIVACY_OPTIONS, user: { type: 'string' }, purpose: { type: 'string' } } }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = required('--user', values.user, usage);
  let purpose: ConsentPurpose | undefined;
  if (values.purpose !== undefined) {
    const purposes = purposeList('--purpose', values.purpose, usage);
    if (purposes.length > 1) throw new UsageError(`--purpose takes one purpose here (the history of one, or of all without it), got "${values.purpose}"`, usage);
    purpose = purposes[0];
  }
  return { kind: 'consent-history', options: { connection: connection(values, env, usage, 'privacy'), user, purpose, json: values.json ?? false } };
}

function parseConsent(argv: readonly string[], env: Env): ParsedCommand {
  const [sub, ...rest] = argv;
  const known = 'grant, deny, withdraw, show, history';
  if (sub === '--help' || sub === '-h') return { kind: 'help', text: CONSENT_USAGE };
  if (sub === undefined || sub.startsWith('-')) throw new UsageError(`which consent command? (${known})`, CONSENT_USAGE);
  if (sub === 'grant' || sub === 'deny' || sub === 'withdraw') return parseConsentSet(sub, rest, env);
  if (sub === 'show') return parseConsentShow(rest, env);
  if (sub === 'history') return parseConsentHistory(rest, env);
  throw new UsageError(`unknown consent command "${sub}" (${known})`, CONSENT_USAGE);
}

function parseErase(argv: readonly string[], env: Env): ParsedCommand {
  const usage = ERASE_USAGE;
  const { values } = parsing(
    () =>
      parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: { ...PRIVACY_OPTIONS, user: { type: 'string' }, reason: { type: 'string' }, wait: { type: 'boolean' }, timeout: { type: 'string' } },
      }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = required('--user', values.user, usage);
  const wait = values.wait ?? false;
  if (values.timeout !== undefined && !wait) throw new UsageError('--timeout goes with --wait', usage);
  const timeout = values.timeout === undefined ? ERASE_TIMEOUT_S : integer('--timeout', values.timeout, 1, 86_400, usage);
  return {
    kind: 'erase',
    options: {
      connection: connection(values, env, usage, 'privacy'),
      user,
      reason: nonEmpty('--reason', values.reason, usage),
      waitS: wait ? timeout : undefined,
      json: values.json ?? false,
    },
  };
}

function parseReceipt(argv: readonly string[], env: Env): ParsedCommand {
  const usage = RECEIPT_USAGE;
  const { values, positionals } = parsing(() => parseArgs({ args: [...argv], strict: true, allowPositionals: true, options: PRIVACY_OPTIONS }), usage);
  if (values.help) return { kind: 'help', text: usage };
  if (positionals.length === 0) throw new UsageError('which erasure? give its id (printed by `aimass erase`)', usage);
  if (positionals.length > 1) throw new UsageError(`one erasure id at a time, got ${positionals.length}: ${positionals.join(' ')}`, usage);
  const erasureId = positionals[0]!.trim();
  if (erasureId === '') throw new UsageError('the erasure id must not be empty', usage);
  return { kind: 'receipt', options: { connection: connection(values, env, usage, 'privacy'), erasureId, json: values.json ?? false } };
}

function parseExport(argv: readonly string[], env: Env): ParsedCommand {
  const usage = EXPORT_USAGE;
  const { values } = parsing(
    () => parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: { ...CONNECTION_OPTIONS, ...HELP, user: { type: 'string' }, out: { type: 'string' } } }),
    usage,
  );
  if (values.help) return { kind: 'help', text: usage };
  const user = required('--user', values.user, usage);
  return { kind: 'export', options: { connection: connection(values, env, usage, 'privacy'), user, out: nonEmpty('--out', values.out, usage) } };
}

function parseDev(argv: readonly string[]): ParsedCommand {
  const { values } = parsing(() => parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: { ...HELP, 'data-dir': { type: 'string' } } }), DEV_USAGE);
  if (values.help) return { kind: 'help', text: DEV_USAGE };
  return { kind: 'dev', dataDir: nonEmpty('--data-dir', values['data-dir'], DEV_USAGE) };
}

/** Parses `aimass …` arguments (without node and the script). Throws UsageError. */
export function parseCommand(argv: readonly string[], env: Env = {}): ParsedCommand {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      throw new UsageError('a command is required', MAIN_USAGE);
    case '-h':
    case '--help':
    case 'help':
      return { kind: 'help', text: MAIN_USAGE };
    case 'dev':
      return parseDev(rest);
    case 'predict':
      return parsePredict(rest, env);
    case 'feedback':
      return parseFeedback(rest, env);
    case 'eval':
      return parseEval(rest, env);
    case 'models':
      return parseModels(rest, env);
    case 'consent':
      return parseConsent(rest, env);
    case 'erase':
      return parseErase(rest, env);
    case 'receipt':
      return parseReceipt(rest, env);
    case 'export':
      return parseExport(rest, env);
    default:
      throw new UsageError(
        `unknown command "${command}" (commands: dev, predict, feedback, models refit, models state, eval personalization, consent, erase, receipt, export, tenants, keys)`,
        MAIN_USAGE,
      );
  }
}
