import { createPersonalFeaturizer, mailFromRfc822, murmur3, type PersonalInput, type SparseFeatures } from '@aimass/ml';
import type { Corpus } from '@aimass/train-general';
import type { v1 } from '@aimass/proto';

/** One corpus mail in the forms the benchmark sends and learns from. */
export interface BenchMail {
  /** `<group>/<id>` in the corpus. */
  readonly key: string;
  readonly group: string;
  /** The corpus label (spam for the spam-* groups). */
  readonly label: 'ham' | 'spam';
  /** The public API's structured mail: subject, decoded text of its text parts, headers (lower-case names). */
  readonly input: v1.InputPayload;
  /** What fusion's personal featurizer reads from that input. */
  readonly personal: PersonalInput;
  /** UTF-8 bytes of subject, body and headers (fusion limits this per input). */
  readonly bytes: number;
}

/**
 * A corpus mail as a mail backend has it at hand (the form the SDK's and CLI's `mail` input
 * takes), by libs/ml's one RFC 822 conversion: the subject, the visible text of its parts, its
 * headers with repeated fields joined.
 */
export function benchMail(item: { key: string; text: string; label: string; group?: string }): BenchMail {
  const mail = mailFromRfc822(item.text);
  const { body, headers } = mail;
  let bytes = Buffer.byteLength(mail.subject) + Buffer.byteLength(body);
  for (const [k, v] of Object.entries(headers)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  return {
    key: item.key,
    group: item.group ?? item.key.split('/')[0] ?? '',
    label: item.label === 'spam' ? 'spam' : 'ham',
    input: { kind: { $case: 'mail', value: mail } },
    personal: { mail },
    bytes,
  };
}

/**
 * `count` mails of the corpus, a fixed hash-chosen sample (every group represented), leaving out
 * mails above `maxBytes` (fusion refuses inputs above its limit, 256 KiB by default).
 */
export function sampleMails(corpus: Corpus, count: number, maxBytes: number, salt = 0x5e7a): BenchMail[] {
  const out: BenchMail[] = [];
  const ranked = corpus.items.map((item) => ({ item, rank: murmur3(item.key, salt) })).sort((a, b) => a.rank - b.rank || (a.item.key < b.item.key ? -1 : 1));
  for (const { item } of ranked) {
    if (out.length >= count) break;
    const mail = benchMail(item);
    if (mail.bytes <= maxBytes && mail.bytes > 0) out.push(mail);
  }
  return out;
}

/** The personal featurizer fusion uses (its defaults), over each mail. */
export function personalFeatures(mails: readonly BenchMail[]): SparseFeatures[] {
  const featurizer = createPersonalFeaturizer();
  return mails.map((m) => featurizer.featurize(m.personal));
}
