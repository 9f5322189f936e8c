import { describe, expect, it } from 'vitest';
import { parseCommand, UsageError, type ParsedCommand } from './args.js';
import { DEFAULT_ADDRESS, DEV_USAGE, EVAL_USAGE, FEEDBACK_USAGE, MAIN_USAGE, PREDICT_USAGE } from './usage.js';

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
  ])('%j gives its command help', (argv, text) => {
    expect(parseCommand(argv)).toEqual({ kind: 'help', text });
  });

  it('documents the exit codes and the default address in every command help', () => {
    for (const text of [MAIN_USAGE, PREDICT_USAGE, FEEDBACK_USAGE, EVAL_USAGE]) expect(text).toMatch(/69 the platform could not be reached/);
    expect(PREDICT_USAGE).toContain(DEFAULT_ADDRESS);
    expect(DEFAULT_ADDRESS).toBe('127.0.0.1:50053');
  });
});

describe('commands', () => {
  it('rejects a missing or unknown command with the main usage', () => {
    expect(usageError([]).usage).toBe(MAIN_USAGE);
    expect(usageError(['predcit']).message).toBe('unknown command "predcit" (commands: dev, predict, feedback, eval personalization)');
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
});
