import { parseArgs } from 'node:util';
import type { TrainGeneralOptions } from './train.js';

export const USAGE = `Usage: aimass-train-general --repository DIR [options]

Trains the default general model (fastText-style, on the SpamAssassin corpus) and writes a
model-repository version in Triton's layout: DIR/<model>/<version>/model.onnx and metadata.json,
plus DIR/<model>/config.json when the model has no configuration yet.

Options:
  --repository DIR      model repository root (required)
  --model NAME          model name (default: general)
  --version N|auto      version to write (default: auto = highest present + 1)
  --seed N              training seed; the same seed gives the same model (default: 42)
  --dim N               embedding dimension, 8..512 (default: 64)
  --epochs N            training epochs (default: 5)
  --learning-rate X     AdaGrad learning rate (default: 0.1)
  --bucket-bits K       hashed vocabulary of 2^K rows, 10..22 (default: 18)
  --max-features N      ids per mail, the ONNX input width (default: 2048)
  --limit N             train on a subset of N mails (quick runs)
  --max-batch-size N    max_batch_size written to a new config.json (default: 16)
  --min-accuracy X      fail (exit 1, nothing written) below this held-out accuracy
  --json                print only the result as JSON on stdout (no progress)
  -h, --help            show this help

Exit codes: 0 written, 1 training or writing failed, 2 bad arguments.`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CliOptions extends Omit<TrainGeneralOptions, 'onProgress' | 'corpus' | 'signal'> {
  json: boolean;
}

/** Parses argv; `undefined` means --help was asked for. Throws UsageError with a message for the user. */
export function parseCli(argv: readonly string[]): CliOptions | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        repository: { type: 'string' },
        model: { type: 'string' },
        version: { type: 'string' },
        seed: { type: 'string' },
        dim: { type: 'string' },
        epochs: { type: 'string' },
        'learning-rate': { type: 'string' },
        'bucket-bits': { type: 'string' },
        'max-features': { type: 'string' },
        limit: { type: 'string' },
        'max-batch-size': { type: 'string' },
        'min-accuracy': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return undefined;
  if (!v.repository) throw new UsageError('--repository DIR is required');
  const model = v.model ?? 'general';
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(model)) throw new UsageError(`--model: '${model}' is not a valid model name`);
  const version = v.version === undefined || v.version === 'auto' ? 'auto' : integer('--version', v.version, 1, 2 ** 31);
  const options: CliOptions = { repository: v.repository, model, version, json: v.json ?? false };
  if (v.seed !== undefined) options.seed = integer('--seed', v.seed, 0, 0xffffffff);
  if (v.dim !== undefined) options.dim = integer('--dim', v.dim, 8, 512);
  if (v.epochs !== undefined) options.epochs = integer('--epochs', v.epochs, 1, 100);
  if (v['learning-rate'] !== undefined) options.learningRate = real('--learning-rate', v['learning-rate'], 0, 10);
  if (v['bucket-bits'] !== undefined) options.bucketBits = integer('--bucket-bits', v['bucket-bits'], 10, 22);
  if (v['max-features'] !== undefined) options.maxFeatures = integer('--max-features', v['max-features'], 16, 65536);
  if (v.limit !== undefined) options.limit = integer('--limit', v.limit, 10, Number.MAX_SAFE_INTEGER);
  if (v['max-batch-size'] !== undefined) options.maxBatchSize = integer('--max-batch-size', v['max-batch-size'], 0, 65536);
  if (v['min-accuracy'] !== undefined) options.minAccuracy = real('--min-accuracy', v['min-accuracy'], 0, 1);
  return options;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag}: expected an integer in [${min}, ${max}], got '${text}'`);
  }
  return n;
}

function real(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= min || n > max) {
    throw new UsageError(`${flag}: expected a number in (${min}, ${max}], got '${text}'`);
  }
  return n;
}
