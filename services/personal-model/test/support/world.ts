/**
 * Mail-like test inputs: senders with their own vocabulary, a general model's output for each
 * (noisy logits that follow the crowd's label, an embedding near the sender's topic) and the
 * personal featurizer's sparse features, exactly as fusion would send them.
 */
import { createPersonalFeaturizer, seededRandom } from '@aimass/ml';
import type { v1 } from '@aimass/proto';

export const GENERAL = { name: 'general', version: '1' } as const;
export const EMBEDDING_DIM = 8;
const featurizer = createPersonalFeaturizer();

export interface Mail {
  sender: string;
  crowd: 'ham' | 'spam';
  general: v1.GeneralOutput;
  sparse: v1.SparseVector;
}

export function mailWorld(seed = 1) {
  const random = seededRandom(seed);
  const senders = Array.from({ length: 6 }, (_, i) => ({ domain: `news.shop${i}.example`, crowd: (i % 2 === 0 ? 'spam' : 'ham') as 'ham' | 'spam' }));
  const centres = new Map(senders.map((s) => [s.domain, Array.from({ length: EMBEDDING_DIM }, () => random.normal())]));
  const pick = <T>(a: readonly T[]) => a[Math.floor(random.next() * a.length)]!;
  const mail = (domain?: string, general: { name: string; version: string } = GENERAL): Mail => {
    const s = domain ? senders.find((x) => x.domain === domain)! : pick(senders);
    const words = Array.from({ length: 12 }, () => `w${Math.floor(random.next() * 40)}${s.domain.length}`);
    const sparse = featurizer.featurize({ mail: { subject: words.slice(0, 3).join(' '), body: words.join(' '), headers: { from: `offers@${s.domain}` } } });
    const margin = (s.crowd === 'spam' ? 4 : -4) + random.normal();
    const p = 1 / (1 + Math.exp(-margin));
    return {
      sender: s.domain,
      crowd: s.crowd,
      general: {
        model: { ...general },
        logits: [Math.log(1 - p), Math.log(p)],
        probabilities: [1 - p, p],
        embedding: centres.get(s.domain)!.map((v) => v + 0.3 * random.normal()),
      },
      sparse,
    };
  };
  return { senders, mail };
}

export function example(mail: Mail, label: string, extra: Partial<v1.TrainingExample> = {}): v1.TrainingExample {
  return { general: mail.general, sparseFeatures: mail.sparse, label, weight: 0, sourceEventId: '', occurredAt: undefined, sourceSequence: 0, ...extra };
}

export function scoreItem(user: string, mail: Mail, itemId = 'i'): v1.ScoreItem {
  return { itemId, userPseudonym: user, general: mail.general, sparseFeatures: mail.sparse };
}
