import { describe, expect, it } from 'vitest';
import { progressPrinter } from './progress.js';

const trainStep = (epoch: number, processed: number) =>
  ({ phase: 'train', epoch, epochs: 2, processed, total: 100, loss: 0.5, learningRate: 0.1, examplesPerSecond: 1234.4, elapsedMs: 10 }) as const;

describe('progressPrinter', () => {
  it('writes one line per epoch and phase when stderr is not a terminal', () => {
    const chunks: string[] = [];
    const print = progressPrinter({ isTTY: false, write: (c) => chunks.push(c) });
    print({ phase: 'load', mails: 600, elapsedMs: 120 });
    print({ phase: 'featurize', done: 200, total: 600, elapsedMs: 10 });
    print({ phase: 'featurize', done: 600, total: 600, elapsedMs: 1500 });
    print(trainStep(1, 50));
    print(trainStep(1, 100));
    print({ phase: 'write', path: '/r/general/1/model.onnx' });
    expect(chunks.join('')).toBe(
      [
        'loaded 600 mails in 0.1 s',
        'featurized 600 mails in 1.5 s',
        'epoch 1/2 [########################] 100% 1234 mails/s loss 0.5000',
        'wrote /r/general/1/model.onnx',
        '',
      ].join('\n'),
    );
  });

  it('redraws a single line in place on a terminal', () => {
    const chunks: string[] = [];
    const print = progressPrinter({ isTTY: true, write: (c) => chunks.push(c) });
    print(trainStep(1, 50));
    print(trainStep(1, 100));
    expect(chunks[0]).toBe(`\r\u001b[2Kepoch 1/2 [${'#'.repeat(12)}${'-'.repeat(12)}]  50% 1234 mails/s loss 0.5000`);
    expect(chunks.at(-1)).toMatch(/100% .*\n$/);
  });
});
