import { isHeldOut, parseMail } from '@aimass/ml';
import type { Corpus } from '@aimass/train-general';

export type Label = 'ham' | 'spam';

/** One corpus mail with what the profiles select on. */
export interface EvalMail {
  /** `<group>/<id>`, the corpus key (also the key of the general model's hold-out split). */
  readonly key: string;
  /** easy-ham-1, hard-ham-1, spam-2, … */
  readonly group: string;
  /** The label the corpus gives it (spam for the spam-* groups). */
  readonly corpusLabel: Label;
  /** The whole message as it was received (headers and MIME body). */
  readonly raw: string;
  /** Lower-cased domain of the From address, when there is one. */
  readonly fromDomain: string | undefined;
  /** The List-Id's identifier (inside <…>), lower-cased, when the mail has one. */
  readonly listId: string | undefined;
  /** True when the default general model did not train on it (its hold-out split). */
  readonly generalHeldOut: boolean;
}

/**
 * The fraction train-general's `trainTextModel` holds out by default; the default model the
 * runner trains uses it, so these mails are the ones that model has never seen.
 */
export const GENERAL_HELD_OUT_FRACTION = 0.2;

function firstHeader(headers: readonly { name: string; value: string }[], name: string): string | undefined {
  return headers.find((h) => h.name === name)?.value;
}

export function evalMail(item: { key: string; text: string; label: string; group?: string | undefined }): EvalMail {
  const { headers } = parseMail(item.text);
  const from = firstHeader(headers, 'from');
  const list = firstHeader(headers, 'list-id');
  return {
    key: item.key,
    group: item.group ?? item.key.split('/')[0]!,
    corpusLabel: item.label === 'spam' ? 'spam' : 'ham',
    raw: item.text,
    fromDomain: from?.match(/@([\w.-]+\.[a-z]{2,})/i)?.[1]?.toLowerCase().replace(/\.$/, ''),
    listId: list === undefined ? undefined : (list.match(/<([^>]+)>/)?.[1] ?? list).trim().toLowerCase(),
    generalHeldOut: isHeldOut(item.key, GENERAL_HELD_OUT_FRACTION),
  };
}

/** The corpus (train-general's `loadSpamAssassin()`) as mails the evaluation can select from, in key order. */
export function evalMails(corpus: Pick<Corpus, 'items'>): EvalMail[] {
  return corpus.items.map(evalMail);
}
