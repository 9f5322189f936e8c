import { describe, expect, it } from 'vitest';
import { parseCommand, UsageError, type ParsedCommand } from './args.js';
import {
  CONSENT_DENY_USAGE,
  CONSENT_GRANT_USAGE,
  CONSENT_HISTORY_USAGE,
  CONSENT_SHOW_USAGE,
  CONSENT_USAGE,
  CONSENT_WITHDRAW_USAGE,
  DEFAULT_ADDRESS,
  DEFAULT_PRIVACY_ADDRESS,
  DEFAULT_UPDATER_ADDRESS,
  DEV_USAGE,
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

function usageError(argv: string[], env = {}): UsageError {
  try {
    parseCommand(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`expected a usage error for ${argv.join(' ')}`);
}

function options<K extends ParsedCommand['kind']>(kind: K, argv: string[], env = {}): Extract<ParsedCommand, { kind: K }> {
  const parsed = parseCommand(argv, env);
  expect(parsed.kind).toBe(kind);
  return parsed as Extract<ParsedCommand, { kind: K }>;
}

describe('help', () => {
  it.each([
    [['--help'], MAIN_USAGE],
    [['help'], MAIN_USAGE],
    [['dev', '-h'], DEV_USAGE],
    [['predict', '--help'], PREDICT_USAGE],
    [['feedback', '--help'], FEEDBACK_USAGE],
    [['eval', '--help'], EVAL_USAGE],
    [['eval', 'personalization', '--help'], EVAL_USAGE],
    [['models', '--help'], MODELS_USAGE],
    [['models', 'refit', '--help'], MODELS_REFIT_USAGE],
    [['models', 'state', '-h'], MODELS_STATE_USAGE],
  ])('%j gives its command help', (argv, text) => {
    expect(parseCommand(argv)).toEqual({ kind: 'help', text });
  });

  it('documents the exit codes and the default address in every command help', () => {
    for (const text of [MAIN_USAGE, PREDICT_USAGE, FEEDBACK_USAGE, EVAL_USAGE]) expect(text).toMatch(/69 the platform could not be reached/);
    for (const text of [MODELS_REFIT_USAGE, MODELS_STATE_USAGE]) {
      expect(text).toMatch(/69 the updater could not be reached/);
      expect(text).toContain(`$AIMASS_UPDATER_ADDRESS or\n                       ${DEFAULT_UPDATER_ADDRESS}`);
    }
    expect(PREDICT_USAGE).toContain(DEFAULT_ADDRESS);
    expect(DEFAULT_ADDRESS).toBe('127.0.0.1:50053');
    // The runner's fourth service, after general-model (50051), personal-model and fusion.
    expect(DEFAULT_UPDATER_ADDRESS).toBe('127.0.0.1:50054');
  });
});

describe('commands', () => {
  it('rejects a missing or unknown command with the main usage', () => {
    expect(usageError([]).usage).toBe(MAIN_USAGE);
    expect(usageError(['predcit']).message).toBe('unknown command "predcit" (commands: dev, predict, feedback, models refit, models state, eval personalization, consent, erase, receipt, export, tenants, keys)');
    expect(usageError(['eval']).message).toBe('which evaluation? (known: personalization)');
    expect(usageError(['eval', 'speed']).message).toBe('unknown evaluation "speed" (known: personalization)');
  });

  it('names an unknown option', () => {
    const e = usageError(['predict', '--user', 'u', '--text', 'x', '--colour']);
    expect(e.message).toMatch(/Unknown option '--colour'/);
    expect(e.usage).toBe(PREDICT_USAGE);
  });

  it('takes --data-dir for dev', () => {
    expect(parseCommand(['dev', '--data-dir', '/tmp/d'])).toEqual({ kind: 'dev', dataDir: '/tmp/d' });
  });
});

describe('predict', () => {
  it('parses a full command line', () => {
    const { options: o } = options('predict', ['predict', '--user', 'u1', '--text', 'hi', '--strategy', 'stacking', '--top-k', '1', '--components', '--json', '--address', 'fusion:443', '--tenant', 'acme', '--api-key', 'k', '--deadline-ms', '800']);
    expect(o).toEqual({
      connection: { address: 'fusion:443', tenant: 'acme', apiKey: 'k', deadlineMs: 800 },
      user: 'u1',
      input: { text: 'hi' },
      strategy: 'stacking',
      topK: 1,
      components: true,
      json: true,
    });
  });

  it('takes the connection from AIMASS_* variables, then the defaults', () => {
    const fromEnv = options('predict', ['predict', '--user', 'u', '--mail-file', 'm.eml'], { AIMASS_ADDRESS: 'h:1', AIMASS_TENANT: 't-2', AIMASS_API_KEY: 'sk' });
    expect(fromEnv.options.connection).toEqual({ address: 'h:1', tenant: 't-2', apiKey: 'sk', deadlineMs: 5000 });
    expect(fromEnv.options.input).toEqual({ mailFile: 'm.eml' });
    const defaults = options('predict', ['predict', '--user', 'u', '--text', 'x']);
    expect(defaults.options.connection).toEqual({ address: DEFAULT_ADDRESS, tenant: 'default', apiKey: undefined, deadlineMs: 5000 });
  });

  it.each([
    [['predict', '--text', 'x'], '--user is required'],
    [['predict', '--user', 'u'], 'what to classify is missing: give --text T or --mail-file FILE'],
    [['predict', '--user', 'u', '--text', 'x', '--mail-file', 'f'], 'give one of --text and --mail-file, not several'],
    [['predict', '--user', ' ', '--text', 'x'], '--user must not be empty'],
    [['predict', '--user', 'u', '--text', 'x', '--strategy', 'best'], '--strategy must be one of general, personal, interpolate, stacking, override, got "best"'],
    [['predict', '--user', 'u', '--text', 'x', '--top-k', '0'], '--top-k must be a whole number from 1 to 1000, got "0"'],
    [['predict', '--user', 'u', '--text', 'x', '--tenant', 'ACME'], '--tenant "ACME" is not a tenant id: use 1-63 lower-case letters, digits and dashes'],
    [['predict', '--user', 'u', '--text', 'x', '--deadline-ms', '1.5'], '--deadline-ms must be a whole number from 1 to 3600000, got "1.5"'],
  ])('%j: %s', (argv, message) => {
    expect(usageError(argv).message).toBe(message);
  });
});

describe('feedback', () => {
  it('takes a prediction id or an input, and a label', () => {
    const byId = options('feedback', ['feedback', '--user', 'u', '--prediction-id', 'p-1', '--label', 'spam', '--idempotency-key', 'k1', '--occurred-at', '2024-05-01T10:00:00Z']);
    expect(byId.options.target).toEqual({ predictionId: 'p-1' });
    expect(byId.options.idempotencyKey).toBe('k1');
    expect(byId.options.occurredAt?.toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect(options('feedback', ['feedback', '--user', 'u', '--text', 'buy now', '--label', 'spam']).options.target).toEqual({ text: 'buy now' });
  });

  it.each([
    [['feedback', '--user', 'u', '--label', 'spam'], 'what the feedback is about is missing: give --prediction-id P (from `aimass predict`), --text T or --mail-file FILE'],
    [['feedback', '--user', 'u', '--prediction-id', 'p', '--text', 'x', '--label', 'spam'], 'give one of --prediction-id, --text and --mail-file, not several'],
    [['feedback', '--user', 'u', '--prediction-id', 'p'], '--label is required'],
    [['feedback', '--user', 'u', '--prediction-id', 'p', '--label', 'spam', '--occurred-at', 'yesterday'], '--occurred-at must be an ISO 8601 time such as 2024-05-01T10:00:00Z, got "yesterday"'],
  ])('%j: %s', (argv, message) => {
    expect(usageError(argv).message).toBe(message);
  });
});

describe('eval personalization', () => {
  it('has the issue-sized defaults, smaller ones with --quick, and no address unless given', () => {
    const full = options('eval-personalization', ['eval', 'personalization']).options;
    expect(full).toMatchObject({ address: undefined, tenant: 'default', usersPerProfile: 2, streamLength: 2400, heldOut: 600, checkpoints: [10, 50, 200], feedbackShare: 0.1, fusedStrategy: 'default', input: 'mail', concurrency: 4, seed: 1, strict: false, dryRun: false });
    const quick = options('eval-personalization', ['eval', 'personalization', '--quick']).options;
    expect(quick).toMatchObject({ usersPerProfile: 1, streamLength: 800, heldOut: 150, checkpoints: [10, 50] });
    expect(options('eval-personalization', ['eval', 'personalization'], { AIMASS_ADDRESS: 'f:1' }).options.address).toBe('f:1');
  });

  it('sorts and deduplicates checkpoints and validates every number', () => {
    const o = options('eval-personalization', ['eval', 'personalization', '--checkpoints', '50, 10,50', '--json', 'out/p.json', '--plot', 'p.svg', '--run-id', 'nightly-1']).options;
    expect(o.checkpoints).toEqual([10, 50]);
    expect([o.json, o.plot, o.runId]).toEqual(['out/p.json', 'p.svg', 'nightly-1']);
    expect(usageError(['eval', 'personalization', '--feedback-share', '1.5']).message).toBe('--feedback-share must be a number from 0 to 1, got "1.5"');
    expect(usageError(['eval', 'personalization', '--plot', 'p.png']).message).toBe('--plot must name an .svg file (the PNG is written beside it), got "p.png"');
    expect(usageError(['eval', 'personalization', '--fused-strategy', 'general']).message).toBe('--fused-strategy must be one of default, interpolate, stacking, override, got "general"');
    expect(usageError(['eval', 'personalization', '--run-id', 'a b']).message).toMatch(/^--run-id must be 1-40 letters/);
  });

  it("asks the started platform's updater, else the environment's, unless told not to wait", () => {
    const updater = (argv: string[], env = {}) => options('eval-personalization', ['eval', 'personalization', ...argv], env).options.updaterAddress;
    // Started by the eval: its banner says (known only once it runs).
    expect(updater([])).toBeUndefined();
    expect(updater([], { AIMASS_UPDATER_ADDRESS: 'u:9' })).toBeUndefined();
    // Another platform: the environment's updater, or where `aimass dev` serves it.
    expect(updater(['--address', 'f:1'])).toBe(DEFAULT_UPDATER_ADDRESS);
    expect(updater([], { AIMASS_ADDRESS: 'f:1', AIMASS_UPDATER_ADDRESS: 'u:9' })).toBe('u:9');
    expect(updater(['--address', 'f:1', '--updater-address', 'u:2'], { AIMASS_UPDATER_ADDRESS: 'u:9' })).toBe('u:2');
    expect(updater(['--updater-address', 'u:2'])).toBe('u:2');
    expect(updater(['--address', 'f:1', '--updater-address', 'none'])).toBeNull();
    expect(usageError(['eval', 'personalization', '--updater-address', '']).message).toBe('--updater-address must not be empty');
  });
});

describe('models', () => {
  it('rejects a missing or unknown models command with the models usage', () => {
    expect(usageError(['models']).message).toBe('which models command? (refit, state)');
    expect(usageError(['models', 'list']).message).toBe('unknown models command "list" (refit, state)');
    expect(usageError(['models', 'list']).usage).toBe(MODELS_USAGE);
  });

  it('refits one user, on a given general model, and waits with --wait', () => {
    const o = options('models-refit', ['models', 'refit', '--user', 'u1', '--general-model', 'general:3', '--wait', '--json', '--tenant', 'acme', '--api-key', 'k', '--deadline-ms', '800']).options;
    expect(o).toEqual({
      connection: { address: DEFAULT_UPDATER_ADDRESS, tenant: 'acme', apiKey: 'k', deadlineMs: 800 },
      scope: { user: 'u1' },
      generalModel: { name: 'general', version: '3' },
      wait: true,
      json: true,
    });
  });

  it('refits every stale user with --all, every user with --include-current', () => {
    expect(options('models-refit', ['models', 'refit', '--all']).options).toMatchObject({ scope: { all: true, includeCurrent: false }, generalModel: undefined, wait: false, json: false });
    expect(options('models-refit', ['models', 'refit', '--all', '--include-current']).options.scope).toEqual({ all: true, includeCurrent: true });
  });

  it('reads --general-model as NAME, NAME:VERSION or NAME@VERSION', () => {
    const model = (value: string) => options('models-refit', ['models', 'refit', '--all', '--general-model', value]).options.generalModel;
    expect(model('general')).toEqual({ name: 'general' });
    expect(model('general:20240501')).toEqual({ name: 'general', version: '20240501' });
    expect(model('general@3')).toEqual({ name: 'general', version: '3' });
  });

  it("talks to the updater: --address, else $AIMASS_UPDATER_ADDRESS, else 127.0.0.1:50054 (never fusion's AIMASS_ADDRESS)", () => {
    const address = (argv: string[], env = {}) => options('models-state', ['models', 'state', ...argv], env).options.connection.address;
    expect(address([])).toBe('127.0.0.1:50054');
    expect(address([], { AIMASS_ADDRESS: 'fusion:1' })).toBe('127.0.0.1:50054');
    expect(address([], { AIMASS_UPDATER_ADDRESS: 'updater:2' })).toBe('updater:2');
    expect(address(['--address', 'u:3'], { AIMASS_UPDATER_ADDRESS: 'updater:2' })).toBe('u:3');
    expect(options('models-refit', ['models', 'refit', '--all'], { AIMASS_UPDATER_ADDRESS: 'updater:2', AIMASS_TENANT: 't-1' }).options.connection).toEqual({
      address: 'updater:2',
      tenant: 't-1',
      apiKey: undefined,
      deadlineMs: 5000,
    });
  });

  it('reports the tenant, or one user with --user', () => {
    expect(options('models-state', ['models', 'state']).options).toMatchObject({ user: undefined, json: false });
    expect(options('models-state', ['models', 'state', '--user', 'u1', '--json']).options).toMatchObject({ user: 'u1', json: true });
  });

  it.each([
    [['models', 'refit'], 'whose model? give --user ID, or --all for every stale user'],
    [['models', 'refit', '--user', 'u', '--all'], 'give one of --user and --all, not both'],
    [['models', 'refit', '--user', 'u', '--include-current'], '--include-current goes with --all'],
    [['models', 'refit', '--user', ' '], '--user must not be empty'],
    [['models', 'refit', '--all', '--general-model', 'general:'], '--general-model must be NAME or NAME:VERSION, e.g. general:3, got "general:"'],
    [['models', 'refit', '--all', '--general-model', ':3'], '--general-model must be NAME or NAME:VERSION, e.g. general:3, got ":3"'],
    [['models', 'state', '--user', ''], '--user must not be empty'],
    [['models', 'state', '--tenant', 'A'], '--tenant "A" is not a tenant id: use 1-63 lower-case letters, digits and dashes'],
  ])('%j: %s', (argv, message) => {
    expect(usageError(argv).message).toBe(message);
  });

  it('names an unknown option with the subcommand usage', () => {
    const e = usageError(['models', 'state', '--wait']);
    expect(e.message).toMatch(/Unknown option '--wait'/);
    expect(e.usage).toBe(MODELS_STATE_USAGE);
  });
});

describe('privacy commands', () => {
  const PV = { AIMASS_POLICY_VERSION: 'policy-7' };

  it.each([
    [['consent', '--help'], CONSENT_USAGE],
    [['consent', 'grant', '--help'], CONSENT_GRANT_USAGE],
    [['consent', 'deny', '-h'], CONSENT_DENY_USAGE],
    [['consent', 'withdraw', '--help'], CONSENT_WITHDRAW_USAGE],
    [['consent', 'show', '--help'], CONSENT_SHOW_USAGE],
    [['consent', 'history', '--help'], CONSENT_HISTORY_USAGE],
    [['erase', '--help'], ERASE_USAGE],
    [['receipt', '--help'], RECEIPT_USAGE],
    [['export', '-h'], EXPORT_USAGE],
  ])('%j gives its command help', (argv, text) => {
    expect(parseCommand(argv)).toEqual({ kind: 'help', text });
  });

  it('documents the privacy address and exit codes, and lists the commands in the main help', () => {
    expect(DEFAULT_PRIVACY_ADDRESS).toBe('127.0.0.1:50055');
    for (const text of [CONSENT_GRANT_USAGE, CONSENT_SHOW_USAGE, CONSENT_HISTORY_USAGE, ERASE_USAGE, RECEIPT_USAGE, EXPORT_USAGE]) {
      expect(text).toContain(`$AIMASS_PRIVACY_ADDRESS or\n                       ${DEFAULT_PRIVACY_ADDRESS}`);
      expect(text).toMatch(/69 the privacy service could not be reached/);
    }
    expect(MAIN_USAGE).toContain('\n  consent grant|deny|withdraw\n');
    for (const command of ['consent show', 'consent history', 'erase', 'receipt', 'export']) expect(MAIN_USAGE).toContain(`\n  ${command} `);
    expect(DEV_USAGE).toContain(`the privacy API (\`aimass consent\`, \`erase\`,\n\`receipt\`, \`export\`) on ${DEFAULT_PRIVACY_ADDRESS}`);
  });

  it('records a decision per purpose, in the order given, without repeats', () => {
    const o = options('consent-set', ['consent', 'withdraw', '--user', 'u1', '--purpose', 'training, personalization,training', '--policy-version', 'v3', '--source', 'support-ticket:4711', '--json', '--tenant', 'acme']).options;
    expect(o).toEqual({
      connection: { address: DEFAULT_PRIVACY_ADDRESS, tenant: 'acme', apiKey: undefined, deadlineMs: 5000 },
      user: 'u1',
      state: 'withdrawn',
      purposes: ['training', 'personalization'],
      policyVersion: 'v3',
      source: 'support-ticket:4711',
      json: true,
    });
    expect(options('consent-set', ['consent', 'grant', '--user', 'u', '--purpose', 'training'], PV).options).toMatchObject({ state: 'granted', policyVersion: 'policy-7', source: 'aimass-cli', json: false });
    expect(options('consent-set', ['consent', 'deny', '--user', 'u', '--purpose', 'personalization', '--policy-version', 'v9'], PV).options).toMatchObject({ state: 'denied', policyVersion: 'v9' });
  });

  it("talks to privacy: --address, else $AIMASS_PRIVACY_ADDRESS, else 127.0.0.1:50055 (never fusion's AIMASS_ADDRESS)", () => {
    const address = (argv: string[], env = {}) => options('consent-show', ['consent', 'show', '--user', 'u', ...argv], env).options.connection.address;
    expect(address([])).toBe('127.0.0.1:50055');
    expect(address([], { AIMASS_ADDRESS: 'fusion:1', AIMASS_UPDATER_ADDRESS: 'updater:2' })).toBe('127.0.0.1:50055');
    expect(address([], { AIMASS_PRIVACY_ADDRESS: 'privacy:3' })).toBe('privacy:3');
    expect(address(['--address', 'p:4'], { AIMASS_PRIVACY_ADDRESS: 'privacy:3' })).toBe('p:4');
    expect(options('erase', ['erase', '--user', 'u'], { AIMASS_PRIVACY_ADDRESS: 'privacy:3' }).options.connection.address).toBe('privacy:3');
    expect(options('receipt', ['receipt', 'e-1'], { AIMASS_PRIVACY_ADDRESS: 'privacy:3' }).options.connection.address).toBe('privacy:3');
    expect(options('export', ['export', '--user', 'u'], { AIMASS_PRIVACY_ADDRESS: 'privacy:3' }).options.connection.address).toBe('privacy:3');
  });

  it('shows every purpose or the ones named; the history of all or one', () => {
    expect(options('consent-show', ['consent', 'show', '--user', 'u']).options).toMatchObject({ user: 'u', purposes: [], json: false });
    expect(options('consent-show', ['consent', 'show', '--user', 'u', '--purpose', 'training', '--json']).options).toMatchObject({ purposes: ['training'], json: true });
    expect(options('consent-history', ['consent', 'history', '--user', 'u']).options).toMatchObject({ user: 'u', purpose: undefined });
    expect(options('consent-history', ['consent', 'history', '--user', 'u', '--purpose', 'personalization']).options.purpose).toBe('personalization');
  });

  it('erases, waiting only when asked (60 s unless --timeout)', () => {
    expect(options('erase', ['erase', '--user', 'u']).options).toMatchObject({ user: 'u', reason: undefined, waitS: undefined, json: false });
    expect(options('erase', ['erase', '--user', 'u', '--reason', 'gdpr-art17', '--wait']).options).toMatchObject({ reason: 'gdpr-art17', waitS: 60 });
    expect(options('erase', ['erase', '--user', 'u', '--wait', '--timeout', '5', '--json']).options).toMatchObject({ waitS: 5, json: true });
  });

  it('reads the erasure id of receipt as its argument, and the file of export', () => {
    expect(options('receipt', ['receipt', '0190a5b8-7a2b-7c3d-8e4f-0123456789ab', '--json']).options).toMatchObject({ erasureId: '0190a5b8-7a2b-7c3d-8e4f-0123456789ab', json: true });
    expect(options('export', ['export', '--user', 'u', '--out', 'u.json']).options).toMatchObject({ user: 'u', out: 'u.json' });
    expect(options('export', ['export', '--user', 'u']).options.out).toBeUndefined();
  });

  it.each([
    [['consent'], 'which consent command? (grant, deny, withdraw, show, history)', CONSENT_USAGE],
    [['consent', 'revoke'], 'unknown consent command "revoke" (grant, deny, withdraw, show, history)', CONSENT_USAGE],
    [['consent', 'grant', '--purpose', 'training'], '--user is required', CONSENT_GRANT_USAGE],
    [['consent', 'grant', '--user', 'u'], '--purpose is required', CONSENT_GRANT_USAGE],
    [['consent', 'deny', '--user', 'u', '--purpose', 'training,marketing'], '--purpose must name purposes among personalization, training (comma-separated), got "training,marketing"', CONSENT_DENY_USAGE],
    [['consent', 'grant', '--user', 'u', '--purpose', 'training'], '--policy-version is required: the version of the policy text the user saw (or set $AIMASS_POLICY_VERSION)', CONSENT_GRANT_USAGE],
    [['consent', 'withdraw', '--user', 'u', '--purpose', 'training', '--policy-version', ' '], '--policy-version must not be empty', CONSENT_WITHDRAW_USAGE],
    [['consent', 'show'], '--user is required', CONSENT_SHOW_USAGE],
    [['consent', 'history', '--user', 'u', '--purpose', 'training,personalization'], '--purpose takes one purpose here (the history of one, or of all without it), got "training,personalization"', CONSENT_HISTORY_USAGE],
    [['erase'], '--user is required', ERASE_USAGE],
    [['erase', '--user', 'u', '--timeout', '5'], '--timeout goes with --wait', ERASE_USAGE],
    [['erase', '--user', 'u', '--wait', '--timeout', '0'], '--timeout must be a whole number from 1 to 86400, got "0"', ERASE_USAGE],
    [['erase', '--user', 'u', '--reason', ''], '--reason must not be empty', ERASE_USAGE],
    [['receipt'], 'which erasure? give its id (printed by `aimass erase`)', RECEIPT_USAGE],
    [['receipt', 'a', 'b'], 'one erasure id at a time, got 2: a b', RECEIPT_USAGE],
    [['export'], '--user is required', EXPORT_USAGE],
    [['export', '--user', 'u', '--json'], "Unknown option '--json'", EXPORT_USAGE],
  ])('%j: %s', (argv, message, usage) => {
    const e = usageError(argv);
    expect(e.message).toBe(message);
    expect(e.usage).toBe(usage);
  });
});
