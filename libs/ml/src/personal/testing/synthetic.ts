/**
 * A small synthetic mail world for the personal learner's tests: senders with their own words and
 * topic embeddings, a "crowd" label per sender, and a general model that knows the crowd's label
 * with some noise. Deterministic from a seed.
 */
import { seededRandom } from '../../models/random.js';
import { createPersonalFeaturizer, type SparseFeatures } from '../featurizer.js';

export interface SyntheticItem {
  domain: string;
  crowdLabel: number;
  generalLogits: number[];
  embedding: number[];
  sparse: SparseFeatures;
}

export interface SyntheticWorld {
  domains: { name: string; crowdLabel: number }[];
  /** A fresh item from a domain (random words, noisy embedding and general logits). */
  item(domain?: string): SyntheticItem;
}

export const EMBEDDING_DIM = 16;

export function syntheticWorld(seed = 1): SyntheticWorld {
  const random = seededRandom(seed);
  const featurizer = createPersonalFeaturizer({ dimension: 2 ** 16 });
  const gauss = () => random.normal();
  const domains = Array.from({ length: 20 }, (_, i) => ({ name: `mail.sender${i}.example`, crowdLabel: i % 3 === 0 ? 1 : 0 }));
  // Spam and ham senders share a topic direction each, plus their own.
  const classCentre = [Array.from({ length: EMBEDDING_DIM }, gauss), Array.from({ length: EMBEDDING_DIM }, gauss)];
  const centre = new Map(domains.map((d) => [d.name, classCentre[d.crowdLabel]!.map((v) => v + 0.7 * gauss())]));
  const vocab = new Map(domains.map((d, i) => [d.name, Array.from({ length: 30 }, (_, w) => `d${i}w${w}`)]));
  const common = Array.from({ length: 200 }, (_, w) => `common${w}`);
  const pick = <T>(a: readonly T[]) => a[Math.floor(random.next() * a.length)]!;
  return {
    domains,
    item(domain?: string) {
      const d = domain ? domains.find((x) => x.name === domain)! : pick(domains);
      const words = [...Array.from({ length: 8 }, () => pick(vocab.get(d.name)!)), ...Array.from({ length: 20 }, () => pick(common))];
      const sparse = featurizer.featurize({ mail: { subject: words.slice(0, 3).join(' '), body: words.slice(3).join(' '), headers: { from: `news@${d.name}` } } });
      const embedding = centre.get(d.name)!.map((v) => v + 0.5 * gauss());
      // The general model: right about the crowd most of the time, confident, with noise.
      const margin = (d.crowdLabel === 1 ? 3.5 : -3.5) + 2 * gauss();
      const g0 = -Math.log1p(Math.exp(margin));
      return { domain: d.name, crowdLabel: d.crowdLabel, generalLogits: [g0, g0 + margin], embedding, sparse };
    },
  };
}
