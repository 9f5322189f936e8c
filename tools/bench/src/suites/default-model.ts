import { existsSync } from 'node:fs';
import { cp, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FASTTEXT_ONNX, createFeaturizer, murmur3, parseTokenizerConfig } from '@aimass/ml';
import { loadSpamAssassin, progressPrinter, trainGeneral, type Corpus } from '@aimass/train-general';
import type { Progress } from '../progress.js';
import { makeWorkload, type Workload } from './workload.js';

/** The name the default model is served under (as in production: the task API's model). */
export const DEFAULT_SERVED_NAME = 'general';
/** Mails whose ids make up the requests. */
const SAMPLE_MAILS = 256;
const TRAIN_SEED = 42;

interface DefaultMetadata {
  inputs: { name: string; datatype: string; shape: number[] }[];
  tokenizer: unknown;
  metrics?: { heldOut?: { accuracy?: number } };
}

/**
 * Trains the default model once into `<cacheDir>/repository/general/1` with tools/train-general
 * (its progress on stderr); later runs reuse it.
 */
async function ensureTrained(cacheDir: string, corpus: Corpus, progress: Progress): Promise<string> {
  // Keyed by the exporter's graph revision: a model exported by an older graph would measure the
  // old graph.
  const repository = join(cacheDir, `repository-g${FASTTEXT_ONNX.graphRevision}`);
  const versionDir = join(repository, DEFAULT_SERVED_NAME, '1');
  if (existsSync(join(versionDir, 'model.onnx')) && existsSync(join(versionDir, 'metadata.json'))) {
    progress.note(`default: reusing the trained model in ${versionDir}`);
    return versionDir;
  }
  progress.note(`default: training the default model into ${repository} (once; cached for later runs)`);
  const result = await trainGeneral({
    repository,
    model: DEFAULT_SERVED_NAME,
    version: 1,
    seed: TRAIN_SEED,
    corpus,
    onProgress: progressPrinter(process.stderr),
  });
  return dirname(result.path);
}

/** Real mails: a fixed, hash-chosen sample of the corpus, so every group is represented. */
export function sampleTexts(corpus: Corpus, count: number): string[] {
  return corpus.items
    .map((item) => ({ item, rank: murmur3(item.key, 0xbe7c) }))
    .sort((a, b) => a.rank - b.rank)
    .slice(0, count)
    .map(({ item }) => item.text);
}

/**
 * The default model (trained once into `cacheDir`) copied into `repository` as
 * `general/1`, served under DEFAULT_SERVED_NAME. Returns its version directory.
 */
export async function prepareDefaultRepository(repository: string, cacheDir: string, progress: Progress, corpus: Corpus = loadSpamAssassin()): Promise<string> {
  const cached = await ensureTrained(cacheDir, corpus, progress);
  const versionDir = join(repository, DEFAULT_SERVED_NAME, '1');
  await cp(cached, versionDir, { recursive: true });
  const cachedConfig = join(dirname(cached), 'config.json');
  if (existsSync(cachedConfig)) await cp(cachedConfig, join(repository, DEFAULT_SERVED_NAME, 'config.json'));
  return versionDir;
}

/** The trained model in its own repository, fed with real mails turned into ids by its own tokenizer. */
export async function prepareDefaultWorkload(repository: string, cacheDir: string, progress: Progress): Promise<Workload> {
  const corpus = loadSpamAssassin();
  const versionDir = await prepareDefaultRepository(repository, cacheDir, progress, corpus);

  const metadata = JSON.parse(await readFile(join(versionDir, 'metadata.json'), 'utf8')) as DefaultMetadata;
  const input = metadata.inputs[0];
  if (input === undefined) throw new Error(`${versionDir}/metadata.json names no input`);
  const featurizer = createFeaturizer(parseTokenizerConfig(metadata.tokenizer));
  const texts = sampleTexts(corpus, SAMPLE_MAILS);
  const rows = texts.map((text) => featurizer.encodePadded(text));
  const width = featurizer.config.maxFeatures;
  const filled = rows.reduce((sum, row) => sum + row.filter((id) => id !== 0n).length, 0) / rows.length;
  const accuracy = metadata.metrics?.heldOut?.accuracy;
  return makeWorkload({
    model: 'default',
    modelPath: join(versionDir, 'model.onnx'),
    servedName: DEFAULT_SERVED_NAME,
    input: { name: input.name, datatype: 'INT64', rowShape: [width] },
    rows,
    flopsPerRow: null,
    description: `ids int64 [1,${width}] of ${texts.length} real SpamAssassin mails (tokenizer from the model's metadata, ${Math.round(filled)} non-padding ids on average)${accuracy === undefined ? '' : `; held-out accuracy ${accuracy.toFixed(4)}`}`,
  });
}
