import { mailFromRfc822, type PersonalFeaturizer, type PersonalInput } from '@aimass/ml';
import type { v1 } from '@aimass/proto';

/**
 * The input as the personal featurizer reads it. Mail keeps its headers (sender, List-Id: the
 * signals a person's taste hangs on); a raw RFC 822 message is parsed into the same shape, so a
 * mail sent raw and the same mail sent structured get the same personal features.
 */
export function personalInputOf(input: v1.InputPayload): PersonalInput {
  const kind = input.kind;
  switch (kind?.$case) {
    case 'text':
      return { text: kind.value };
    case 'mail':
      return {
        mail: {
          subject: kind.value.subject,
          body: kind.value.body,
          headers: Object.fromEntries(Object.entries(kind.value.headers).map(([name, value]) => [name.toLowerCase(), value])),
        },
      };
    case 'raw': {
      const text = new TextDecoder('utf-8').decode(kind.value.data);
      const type = kind.value.contentType.split(';')[0]!.trim().toLowerCase();
      if (type !== 'message/rfc822') return { text };
      return { mail: mailFromRfc822(text) };
    }
    default:
      // Validation rejects every other kind before this point.
      throw new TypeError(`personalInputOf: unsupported input kind ${kind?.$case ?? 'none'}`);
  }
}

/** The input's sparse personal features: what Score reads and what a personal model trains on. */
export function personalFeatures(featurizer: PersonalFeaturizer, input: v1.InputPayload): v1.SparseVector {
  const f = featurizer.featurize(personalInputOf(input));
  return { dimension: f.dimension, indices: f.indices, values: f.values };
}
