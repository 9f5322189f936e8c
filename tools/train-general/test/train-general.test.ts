import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FASTTEXT_ONNX, createFeaturizer, inspectOnnxModel, isHeldOut, parseTokenizerConfig } from '@aimass/ml';
import { loadSpamAssassin, type Corpus } from '../src/corpus.js';
import { nextVersion, trainGeneral, type TrainGeneralOptions } from '../src/train.js';

const run = promisify(execFile);
const packageDir = join(import.meta.dirname, '..');

// Small enough for seconds, big enough that every corpus group is in both sets.
const SMALL = { dim: 16, epochs: 1, bucketBits: 14, maxFeatures: 512 } satisfies Partial<TrainGeneralOptions>;

let root: string;
let small: Corpus;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'train-general-'));
  small = loadSpamAssassin({ limit: 600 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs(actual[i]! - expected[i]!), `element ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tol);
  }
}

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

describe('trainGeneral on 600 mails', () => {
  it('writes a Triton-layout version whose ONNX gives the TypeScript model\'s probs and embedding on real mails', async () => {
    const repository = join(root, 'repo-small');
    const phases = new Set<string>();
    const result = await trainGeneral({ ...SMALL, repository, corpus: small, onProgress: (p) => phases.add(p.phase) });
    expect(result).toMatchObject({ model: 'general', version: 1, path: join(repository, 'general', '1', 'model.onnx') });
    expect([...phases]).toEqual(['load', 'featurize', 'train', 'evaluate', 'export', 'write']);

    const metadata = JSON.parse(await readFile(join(repository, 'general', '1', 'metadata.json'), 'utf8'));
    expect(metadata).toMatchObject({
      model: 'general',
      version: 1,
      labels: ['ham', 'spam'],
      inputs: [{ name: 'ids', datatype: 'INT64', shape: [-1, 512], padding: 0 }],
      outputs: [
        { name: 'probs', datatype: 'FP32', shape: [-1, 2] },
        { name: 'embedding', datatype: 'FP32', shape: [-1, 16] },
      ],
      data: { examples: 600, hash: small.dataHash },
      training: { seed: 42, dim: 16, epochs: 1 },
    });
    expect(Object.keys(metadata.metrics.heldOut.byGroup)).toEqual(['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2']);
    expect(metadata.metrics.heldOut.accuracy).toBeGreaterThan(0.85);
    expect(metadata.metrics.heldOut.auc).toBeGreaterThan(0.9);
    expect(metadata.onnx.sha256).toBe(await sha256(result.path));

    const config = JSON.parse(await readFile(join(repository, 'general', 'config.json'), 'utf8'));
    expect(config).toEqual({
      name: 'general',
      platform: 'onnxruntime_onnx',
      max_batch_size: 16,
      input: [{ name: 'ids', data_type: 'TYPE_INT64', dims: [512] }],
      output: [
        { name: 'probs', data_type: 'TYPE_FP32', dims: [2] },
        { name: 'embedding', data_type: 'TYPE_FP32', dims: [16] },
      ],
    });

    // Serving's view: only the file. Rebuild the featurizer from its metadata and score real mails.
    const bytes = await readFile(result.path);
    const info = inspectOnnxModel(bytes);
    expect(info.metadata).toMatchObject({ model_name: 'general', model_version: '1', data_hash: small.dataHash, seed: '42' });
    const featurizer = createFeaturizer(parseTokenizerConfig(info.metadata[FASTTEXT_ONNX.metadata.tokenizer]));
    const mails = small.items.filter((i) => isHeldOut(i.key)).slice(0, 16);
    const session = await ort.InferenceSession.create(bytes);
    try {
      const out = await session.run({ ids: new ort.Tensor('int64', featurizer.encodeBatch(mails.map((m) => m.text)), [mails.length, 512]) });
      const probs = (out.probs as ort.Tensor).data as Float32Array;
      const embedding = (out.embedding as ort.Tensor).data as Float32Array;
      expect((out.embedding as ort.Tensor).dims).toEqual([mails.length, 16]);
      mails.forEach((m, row) => {
        const expected = result.trained.predict(featurizer.encode(m.text).ids);
        expectClose(probs.subarray(row * 2, row * 2 + 2), expected.probs);
        expectClose(embedding.subarray(row * 16, row * 16 + 16), expected.embedding);
      });
    } finally {
      await session.release();
    }
  });

  it('gives the same model.onnx for the same seed and another for another seed', async () => {
    const a = await trainGeneral({ ...SMALL, repository: join(root, 'det-a'), corpus: small, seed: 7 });
    const b = await trainGeneral({ ...SMALL, repository: join(root, 'det-b'), corpus: small, seed: 7 });
    const c = await trainGeneral({ ...SMALL, repository: join(root, 'det-c'), corpus: small, seed: 8 });
    expect(await sha256(b.path)).toBe(await sha256(a.path));
    expect(await sha256(c.path)).not.toBe(await sha256(a.path));
    // The split does not move with the seed.
    expect(c.metadata.data.heldOut).toBe(a.metadata.data.heldOut);
    expect(c.metadata.metrics.heldOut.count).toBe(a.metadata.metrics.heldOut.count);
  });

  it('picks the next version, keeps an operator-written config, and honours an explicit version', async () => {
    const repository = join(root, 'versions');
    expect(await nextVersion(repository, 'general')).toBe(1);
    await trainGeneral({ ...SMALL, repository, corpus: small, version: 3 });
    const edited = JSON.stringify({ name: 'general', max_batch_size: 8, version_policy: { latest: { num_versions: 2 } } });
    await writeFile(join(repository, 'general', 'config.json'), edited);
    const next = await trainGeneral({ ...SMALL, repository, corpus: small, epochs: 1 });
    expect(next.version).toBe(4);
    expect(await readFile(join(repository, 'general', 'config.json'), 'utf8')).toBe(edited);
  });

  it('writes nothing when the held-out accuracy misses --min-accuracy', async () => {
    const repository = join(root, 'gate');
    await expect(trainGeneral({ ...SMALL, repository, corpus: small, minAccuracy: 0.999999 })).rejects.toThrow(/below --min-accuracy/);
    expect(await nextVersion(repository, 'general')).toBe(1);
  });
});

describe('the CLI (built dist/main.js)', () => {
  beforeAll(async () => {
    await run('npx', ['tsc', '-b', 'tsconfig.lib.json'], { cwd: packageDir });
  }, 120_000);

  const cli = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [join(packageDir, 'dist', 'main.js'), ...args], { cwd: packageDir });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('prints help with exit 0 and rejects bad arguments with exit 2', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--repository DIR');
    const bad = await cli(['--repository', root, '--dim', 'wide']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--dim: expected an integer');
    expect(bad.stderr).toContain('Usage:');
  });

  it('trains with --json: only the result JSON on stdout, no progress on stderr', async () => {
    const repository = join(root, 'cli');
    const out = await cli(['--repository', repository, '--limit', '300', '--epochs', '1', '--dim', '8', '--bucket-bits', '12', '--max-features', '128', '--json']);
    expect(out.code).toBe(0);
    expect(out.stderr.replace(/npm warn.*\n/g, '')).toBe('');
    const result = JSON.parse(out.stdout);
    expect(result).toMatchObject({ model: 'general', version: 1, path: join(repository, 'general', '1', 'model.onnx'), data: { examples: 300 } });
    const plain = await cli(['--repository', repository, '--limit', '300', '--epochs', '1', '--dim', '8', '--bucket-bits', '12', '--max-features', '128']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/model general version 2: .*\nheld-out: accuracy 0\.\d{4}, AUC/);
    expect(plain.stderr).toMatch(/epoch 1\/1 .*100%/);
    const notADirectory = join(root, 'a-file');
    await writeFile(notADirectory, 'x');
    const failed = await cli(['--repository', notADirectory, '--limit', '300', '--epochs', '1', '--dim', '8', '--bucket-bits', '12', '--max-features', '128']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^error: /m);
  }, 60_000);
});

describe.skipIf(process.env.AIMASS_SKIP_FULL_TRAIN === '1')('the full corpus', () => {
  it('reaches held-out accuracy >= 0.99 with the defaults', async () => {
    const result = await trainGeneral({ repository: join(root, 'full'), epochs: 5 });
    const heldOut = result.metadata.metrics.heldOut;
    expect(result.metadata.data.examples).toBe(6046);
    expect(heldOut.accuracy).toBeGreaterThanOrEqual(0.99);
    expect(heldOut.auc).toBeGreaterThanOrEqual(0.998);
  }, 60_000);
});
