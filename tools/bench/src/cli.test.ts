import { describe, expect, it } from 'vitest';
import { parseCli } from './cli.js';

describe('parseCli', () => {
  it('reads a suite with its options and defaults', () => {
    const parsed = parseCli(['general', '--json', 'out/g.json', '--quick', '--concurrency', '64,1,16']);
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run') return;
    expect(parsed.options).toMatchObject({ suite: 'general', json: 'out/g.json', quick: true, concurrency: [1, 16, 64], models: ['default', 'medium', 'heavy'], heavyBlocks: 1 });
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
    });
    const store = parseCli(['personal', '--parts', 'store']);
    expect(store.kind === 'run' && store.options.suite === 'personal' && store.options.parts).toEqual(['store']);
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
  ])('refuses %j', (argv, message) => {
    const parsed = parseCli(argv);
    expect(parsed.kind).toBe('error');
    if (parsed.kind === 'error') expect(parsed.message).toMatch(message);
  });
});
