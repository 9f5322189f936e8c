import { describe, expect, it } from 'vitest';
import { parseCli } from './cli.js';

describe('parseCli', () => {
  it('reads a suite with its options and defaults', () => {
    const parsed = parseCli(['general', '--json', 'out/g.json', '--quick', '--concurrency', '64,1,16']);
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run') return;
    expect(parsed.options).toMatchObject({ suite: 'general', json: 'out/g.json', quick: true, concurrency: [1, 16, 64], models: ['default', 'medium', 'heavy'], heavyBlocks: 1 });
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
  ])('refuses %j', (argv, message) => {
    const parsed = parseCli(argv);
    expect(parsed.kind).toBe('error');
    if (parsed.kind === 'error') expect(parsed.message).toMatch(message);
  });
});
