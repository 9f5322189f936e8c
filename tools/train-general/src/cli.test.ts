import { describe, expect, it } from 'vitest';
import { UsageError, parseCli } from './cli.js';

describe('parseCli', () => {
  it('fills defaults and reads every option', () => {
    expect(parseCli(['--repository', '/r'])).toEqual({ repository: '/r', model: 'general', version: 'auto', json: false });
    expect(
      parseCli([
        '--repository=/r',
        '--model',
        'm1',
        '--version',
        '3',
        '--seed',
        '7',
        '--dim',
        '16',
        '--epochs',
        '2',
        '--learning-rate',
        '0.05',
        '--bucket-bits',
        '14',
        '--max-features',
        '256',
        '--limit',
        '600',
        '--max-batch-size',
        '8',
        '--min-accuracy',
        '0.9',
        '--json',
      ]),
    ).toEqual({
      repository: '/r',
      model: 'm1',
      version: 3,
      seed: 7,
      dim: 16,
      epochs: 2,
      learningRate: 0.05,
      bucketBits: 14,
      maxFeatures: 256,
      limit: 600,
      maxBatchSize: 8,
      minAccuracy: 0.9,
      json: true,
    });
  });

  it('returns undefined for --help', () => {
    expect(parseCli(['--help'])).toBeUndefined();
    expect(parseCli(['-h', '--repository', 'x'])).toBeUndefined();
  });

  it.each([
    [[], /--repository DIR is required/],
    [['--repository'], /argument missing|--repository/],
    [['--repository', 'r', '--bogus'], /Unknown option '--bogus'/],
    [['--repository', 'r', 'extra'], /positional/],
    [['--repository', 'r', '--version', '0'], /--version: expected an integer/],
    [['--repository', 'r', '--version', 'latest'], /--version/],
    [['--repository', 'r', '--dim', '4'], /--dim: expected an integer in \[8, 512\]/],
    [['--repository', 'r', '--epochs', '1.5'], /--epochs/],
    [['--repository', 'r', '--learning-rate', 'fast'], /--learning-rate/],
    [['--repository', 'r', '--min-accuracy', '2'], /--min-accuracy/],
    [['--repository', 'r', '--model', '../evil'], /--model/],
  ])('rejects %j with a message naming the problem', (argv, message) => {
    expect(() => parseCli(argv)).toThrow(UsageError);
    expect(() => parseCli(argv)).toThrow(message);
  });
});
