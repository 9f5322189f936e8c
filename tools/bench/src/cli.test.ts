import { describe, expect, it } from 'vitest';
import { parseCli } from './cli.js';

describe('parseCli', () => {
  it('reads a suite with its options and defaults', () => {
    const parsed = parseCli(['general', '--json', 'out/g.json', '--quick', '--concurrency', '64,1,16']);
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run') return;
    expect(parsed.options).toMatchObject({ suite: 'general', json: 'out/g.json', quick: true, concurrency: [1, 16, 64], models: ['default', 'medium', 'heavy'], heavyBlocks: 1, heavyInput: 'token_ids' });
  });

  it('takes the heavy model on float embeddings when asked, and names the kinds it knows otherwise', () => {
    const parsed = parseCli(['general', '--heavy-input', 'embeddings']);
    expect(parsed.kind === 'run' && parsed.options).toMatchObject({ heavyInput: 'embeddings' });
    expect(parseCli(['general', '--heavy-input', 'floats'])).toEqual({ kind: 'error', message: '--heavy-input must be token_ids or embeddings, got "floats"' });
    expect(parseCli(['personal', '--heavy-input', 'embeddings']).kind).toBe('error');
  });

  it('reads the personal suite with its defaults', () => {
    const parsed = parseCli(['personal', '--quick', '--zipf-s', '1.1', '--store-users', '5000']);
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run' || parsed.options.suite !== 'personal') return;
    expect(parsed.options).toMatchObject({
      quick: true,
      parts: ['fusion', 'store'],
      concurrency: [1, 4, 16, 64],
      zipfS: 1.1,
      storeUsers: 5000,
      users: undefined,
      modelShare: 0.3,
      examplesMax: 200,
      examplesS: 1.5,
      storeClients: 64,
      rounds: undefined,
    });
    const rounds = parseCli(['personal', '--rounds', '5']);
    expect(rounds.kind === 'run' && rounds.options.suite === 'personal' && rounds.options.rounds).toBe(5);
    const general = parseCli(['general', '--rounds', '2']);
    expect(general.kind === 'run' && general.options.suite === 'general' && general.options.rounds).toBe(2);
    const store = parseCli(['personal', '--parts', 'store']);
    expect(store.kind === 'run' && store.options.suite === 'personal' && store.options.parts).toEqual(['store']);
  });

  it('reads the updates suite with its defaults', () => {
    const parsed = parseCli(['updates', '--quick', '--json', 'out/u.json', '--rate', '120', '--poll-ms', '10']);
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run' || parsed.options.suite !== 'updates') return;
    expect(parsed.options).toEqual({
      suite: 'updates',
      json: 'out/u.json',
      quick: true,
      durationS: undefined,
      workers: 2,
      intraOp: 1,
      users: undefined,
      rate: 120,
      predictClients: 4,
      probeShare: undefined,
      pollMs: 10,
    });
    const more = parseCli(['updates', '--users', '500', '--duration', '30', '--predict-clients', '0', '--probe-share', '0.5']);
    expect(more.kind === 'run' && more.options).toMatchObject({ users: 500, durationS: 30, predictClients: 0, probeShare: 0.5 });
  });

  it('reads the privacy suite with its defaults', () => {
    const parsed = parseCli(['privacy', '--quick', '--erasures', '30']);
    expect(parsed.kind === 'run' && parsed.options).toEqual({
      suite: 'privacy',
      json: undefined,
      quick: true,
      durationS: undefined,
      workers: 2,
      intraOp: 1,
      users: undefined,
      erasures: 30,
      erasureConcurrency: 4,
      predictClients: 8,
      overheadClients: 1,
    });
  });

  it('answers --help before anything else', () => {
    expect(parseCli(['--help']).kind).toBe('help');
    expect(parseCli(['nosuch', '-h']).kind).toBe('help');
  });

  it.each([
    [[], /missing suite/],
    [['nosuch'], /unknown suite "nosuch"/],
    [['general', 'medium'], /one suite at a time/],
    [['general', '--bogus'], /bogus/],
    [['general', '--models', 'default,huge'], /unknown model "huge"/],
    [['general', '--concurrency', '0'], /positive integer/],
    [['general', '--duration', '-1'], /--duration/],
    [['general', '--zipf-s', '1'], /--zipf-s is not an option of the general suite/],
    [['personal', '--models', 'default'], /--models is not an option of the personal suite/],
    [['personal', '--parts', 'fusion,cache'], /unknown part "cache"/],
    [['personal', '--model-share', '1.5'], /--model-share/],
    [['personal', '--store-users', '0'], /positive integer/],
    [['personal', '--rounds', '0'], /--rounds/],
    [['updates', '--rounds', '3'], /--rounds is not an option of the updates suite/],
    [['personal', '--rate', '10'], /--rate is not an option of the personal suite/],
    [['general', '--poll-ms', '10'], /--poll-ms is not an option of the general suite/],
    [['updates', '--concurrency', '1,4'], /--concurrency is not an option of the updates suite/],
    [['updates', '--zipf-s', '1'], /--zipf-s is not an option of the updates suite/],
    [['updates', '--rate', '0'], /--rate must be a number > 0/],
    [['updates', '--probe-share', '0'], /--probe-share/],
    [['updates', '--predict-clients', '1.5'], /--predict-clients must be a whole number/],
    [['updates', '--erasures', '5'], /--erasures is not an option of the updates suite/],
    [['privacy', '--rate', '5'], /--rate is not an option of the privacy suite/],
    [['privacy', '--erasure-concurrency', '0'], /positive integer/],
  ])('refuses %j', (argv, message) => {
    const parsed = parseCli(argv);
    expect(parsed.kind).toBe('error');
    if (parsed.kind === 'error') expect(parsed.message).toMatch(message);
  });
});
