import { murmur3 } from '../text/hash.js';

/** Fixed, and separate from the training seed: changing the seed must not move mails between sets. */
const SPLIT_SEED = 0x5b1d;

/**
 * Whether an example belongs to the held-out set: a hash of its key (for the corpus,
 * `<group>/<id>`), so the split is the same on every run and machine, does not depend on the
 * order of the corpus, and a mail added later does not move any other.
 */
export function isHeldOut(key: string, fraction = 0.2): boolean {
  return murmur3(key, SPLIT_SEED) / 0x1_0000_0000 < fraction;
}

export function splitByKey<T>(items: readonly T[], key: (item: T) => string, fraction = 0.2): { train: T[]; test: T[] } {
  const train: T[] = [];
  const test: T[] = [];
  for (const item of items) (isHeldOut(key(item), fraction) ? test : train).push(item);
  return { train, test };
}
