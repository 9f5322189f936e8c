/**
 * Sparse features of an input for the personal models: what a person's taste is about that the
 * general model's embedding blurs away. Who sent a mail, from which domain, through which list,
 * and which words it uses are exactly what people label by ("everything from this shop is
 * spam to me", "mute that list"), so each gets its own coordinates a per-user linear model can
 * put a weight on after a handful of examples.
 *
 * Text is read with the general featurizer's rules (`tokens`, `normalizeText`) and mail bodies
 * with its MIME/HTML reader (`parseMail`), so both models see the same words.
 */
import { tokens, normalizeText } from '../text/featurizer.js';
import { murmur3 } from '../text/hash.js';
import { decodeEncodedWords, mediaTypeOf, parseMail } from '../text/mime.js';

/** What the personal featurizer reads: the same shapes as the public API's text and mail inputs. */
export type PersonalInput = { text: string } | { mail: { subject: string; body: string; headers: Record<string, string> } };

/** A sparse vector: `indices` strictly increasing, each < `dimension`; `values` parallel to them. */
export interface SparseFeatures {
  dimension: number;
  indices: number[];
  values: number[];
}

export interface PersonalFeaturizerOptions {
  /** Size of the hashed feature space, a power of two in [2^10, 2^30]. Default 2^20. */
  dimension?: number;
  /** Hash seed; models trained on one seed only understand features made with it. */
  seed?: number;
  /** `binary` (default): a word counts once; `log`: 1 + ln(count). The word block is L2-normalised either way. */
  termWeighting?: 'binary' | 'log';
  /** Distinct words read per input (subject first, then body). Bounds work and model growth on long mails. */
  maxWords?: number;
  /** Longer words (base64 residue, long URLs) are cut to this many characters. */
  maxWordLength?: number;
}

export interface PersonalFeaturizer {
  readonly dimension: number;
  featurize(input: PersonalInput): SparseFeatures;
}

export const DEFAULT_PERSONAL_FEATURIZER_OPTIONS = Object.freeze({
  dimension: 2 ** 20,
  seed: 0x9e750a1,
  termWeighting: 'binary' as 'binary' | 'log',
  maxWords: 512,
  maxWordLength: 40,
});

/**
 * Header namespaces. The upper half of the space is cut into eight equal slices, one per kind of
 * header feature; words hash into the lower half. So a sender can never share a coordinate with a
 * word or with another kind of header by construction, only (rarely) with another value of its own
 * kind. The eighth slice is shared by the kinds from the eighth on (body_format,
 * message_id_domain): their values hash together with the kind's name, so two of them share a
 * coordinate only by a hash collision. Appending a kind here is compatible (a model trained before
 * has weight 0 on its coordinates, so its answers do not change); reordering is not.
 */
export const PERSONAL_FEATURE_NAMESPACES = Object.freeze([
  'from_address',
  'from_domain',
  'from_org_domain',
  'list_id',
  'reply_to_domain',
  'to_domain',
  'precedence',
  'body_format',
  'message_id_domain',
] as const);

export type PersonalFeatureNamespace = (typeof PERSONAL_FEATURE_NAMESPACES)[number] | 'word';

const HEADER_SLICES = 8;
/** Only the start of a body is read: maxWords fill long before this in any real mail. */
const MAX_BODY_CHARS = 1 << 17;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export function createPersonalFeaturizer(options: PersonalFeaturizerOptions = {}): PersonalFeaturizer {
  const dimension = options.dimension ?? DEFAULT_PERSONAL_FEATURIZER_OPTIONS.dimension;
  if (!isPowerOfTwo(dimension) || dimension < 2 ** 10 || dimension > 2 ** 30) {
    throw new RangeError(`personal featurizer: dimension must be a power of two in [2^10, 2^30], got ${dimension}`);
  }
  const seed = (options.seed ?? DEFAULT_PERSONAL_FEATURIZER_OPTIONS.seed) >>> 0;
  const termWeighting = options.termWeighting ?? DEFAULT_PERSONAL_FEATURIZER_OPTIONS.termWeighting;
  if (termWeighting !== 'binary' && termWeighting !== 'log') throw new RangeError(`personal featurizer: termWeighting must be 'binary' or 'log'`);
  const maxWords = options.maxWords ?? DEFAULT_PERSONAL_FEATURIZER_OPTIONS.maxWords;
  const maxWordLength = options.maxWordLength ?? DEFAULT_PERSONAL_FEATURIZER_OPTIONS.maxWordLength;
  if (!Number.isInteger(maxWords) || maxWords < 1) throw new RangeError('personal featurizer: maxWords must be an integer >= 1');
  if (!Number.isInteger(maxWordLength) || maxWordLength < 1) throw new RangeError('personal featurizer: maxWordLength must be an integer >= 1');

  const wordSpace = dimension / 2;
  const slice = wordSpace / HEADER_SLICES;

  const featurize = (input: PersonalInput): SparseFeatures => {
    const { words, header } = readInput(input, maxWords, maxWordLength);
    const acc = new Map<number, number>();
    let sumSquares = 0;
    for (const [word, count] of words) {
      const index = murmur3(word, seed) % wordSpace;
      acc.set(index, (acc.get(index) ?? 0) + (termWeighting === 'binary' ? 1 : 1 + Math.log(count)));
    }
    for (const v of acc.values()) sumSquares += v * v;
    const norm = sumSquares > 0 ? 1 / Math.sqrt(sumSquares) : 0;
    for (const [index, v] of acc) acc.set(index, v * norm);
    PERSONAL_FEATURE_NAMESPACES.forEach((ns, k) => {
      const value = header[ns];
      if (!value) return;
      const shared = k >= HEADER_SLICES - 1;
      acc.set(wordSpace + Math.min(k, HEADER_SLICES - 1) * slice + (murmur3(shared ? `${ns}:${value}` : value, seed) % slice), 1);
    });
    const indices = [...acc.keys()].sort((a, b) => a - b);
    // float32 values: what crosses the wire (proto `float`), so a model trained on features sent by
    // fusion sees bit-identical values to features computed in-process.
    return { dimension, indices, values: indices.map((i) => Math.fround(acc.get(i)!)) };
  };

  return { dimension, featurize };
}

/** The strings behind the features of an input, by namespace; for tests and debugging. */
export function personalFeatureStrings(input: PersonalInput, options: Pick<PersonalFeaturizerOptions, 'maxWords' | 'maxWordLength'> = {}): {
  words: Map<string, number>;
  header: Partial<Record<(typeof PERSONAL_FEATURE_NAMESPACES)[number], string>>;
} {
  return readInput(input, options.maxWords ?? DEFAULT_PERSONAL_FEATURIZER_OPTIONS.maxWords, options.maxWordLength ?? DEFAULT_PERSONAL_FEATURIZER_OPTIONS.maxWordLength);
}

function readInput(
  input: PersonalInput,
  maxWords: number,
  maxWordLength: number,
): { words: Map<string, number>; header: Partial<Record<(typeof PERSONAL_FEATURE_NAMESPACES)[number], string>> } {
  const words = new Map<string, number>();
  const addWords = (text: string) => {
    for (const { token } of tokens(text.slice(0, MAX_BODY_CHARS), maxWordLength)) {
      const count = words.get(token);
      if (count !== undefined) words.set(token, count + 1);
      else if (words.size < maxWords) words.set(token, 1);
    }
  };
  const header: Partial<Record<(typeof PERSONAL_FEATURE_NAMESPACES)[number], string>> = {};
  if ('text' in input) {
    addWords(readBody(input.text).text);
    return { words, header };
  }
  const { subject, body, headers } = input.mail;
  const h = new Map<string, string>();
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value === 'string') h.set(name.trim().toLowerCase(), decodeEncodedWords(value.slice(0, 4096)));
  }
  addWords(subject || h.get('subject') || '');
  const read = readBody(body ?? '');
  addWords(read.text);
  if (read.html || HTML_MEDIA_TYPES.has(mediaTypeOf(h.get('content-type')) ?? '')) header.body_format = 'html';

  const from = addressOf(h.get('from'));
  if (from) {
    header.from_address = from;
    const domain = from.slice(from.lastIndexOf('@') + 1);
    header.from_domain = domain;
    const org = orgDomain(domain);
    if (org !== domain) header.from_org_domain = org;
  }
  const listId = h.get('list-id');
  if (listId) {
    const id = normalizeText(listId.match(/<([^>]+)>/)?.[1] ?? listId).trim();
    if (id) header.list_id = id;
  }
  const replyTo = domainOfAddress(addressOf(h.get('reply-to')));
  if (replyTo) header.reply_to_domain = replyTo;
  const to = domainOfAddress(addressOf(h.get('to')));
  if (to) header.to_domain = to;
  const precedence = h.get('precedence');
  if (precedence) header.precedence = normalizeText(precedence).trim();
  // The host that minted the Message-ID is the sending system (a bulk mailer, a list server): it
  // stays the same across the From addresses one sender uses (an insurance marketer's dozens of
  // sender names and two domains all mint ids at one host). Digit runs are masked so the machines
  // of one mail farm that are named without a domain (agent1 … agent7) or by address are one value.
  const idHost = h.get('message-id')?.match(/@([^<>\s@]+)/)?.[1];
  if (idHost) {
    const org = orgDomain(normalizeText(idHost).replace(/\.+$/, ''));
    if (org) header.message_id_domain = /\.\p{L}{2,}$/u.test(org) ? org : org.replace(/\d+/g, '#');
  }
  return { words, header };
}

/**
 * Media types of mail that carries an HTML rendition (multipart/alternative is, in practice, a
 * text part and an HTML part). Formatted mail is mostly sent in bulk, newsletters and promotions,
 * so whether a mail is HTML is a taste people label by that no word or sender generalises: in the
 * personalization eval, with message_id_domain, it took a newsletter-averse user's fused error after
 * 50 feedback events from 0.52 to 0.38 of the general model's (replay, 20 seeds; libs/ml README).
 */
const HTML_MEDIA_TYPES: ReadonlySet<string> = new Set(['text/html', 'multipart/alternative', 'multipart/related']);

/** Visible text of a body (HTML reduced to its text by the shared MIME reader), and whether it was HTML. */
function readBody(body: string): { text: string; html: boolean } {
  // A leading blank line tells parseMail there is no header block, as the general model's task API does.
  const parts = parseMail('\n' + body.slice(0, MAX_BODY_CHARS)).parts;
  return { text: parts.map((p) => p.text).join('\n'), html: parts.some((p) => p.htmlTags !== undefined) };
}

/** The (first) address of an address header, lowercased: `"Shop" <News@Shop.example>` → `news@shop.example`. */
export function addressOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = value.match(/<\s*([^<>\s@]+@[^<>\s@]+)\s*>/) ?? value.match(/([^<>\s@,;:"()]+@[\w.-]+)/);
  if (!m) return undefined;
  const address = normalizeText(m[1]!).replace(/\.$/, '');
  return /@[\p{L}\p{N}-]+(\.[\p{L}\p{N}-]+)*$/u.test(address) ? address : undefined;
}

function domainOfAddress(address: string | undefined): string | undefined {
  return address ? address.slice(address.lastIndexOf('@') + 1) : undefined;
}

// Second-level labels under which registries sell names (co.uk, com.au, ...): the organisation
// is one label further left there. A short list instead of the public suffix list, which would
// be a dependency and a data file; a miss only costs one shared coordinate across subdomains.
const SECOND_LEVEL = new Set(['co', 'com', 'net', 'org', 'ac', 'gov', 'edu', 'ne', 'or', 'go']);

/** The registrable part of a domain, roughly: `news.mail.shop.co.uk` → `shop.co.uk`, `a.b.example.com` → `example.com`. */
export function orgDomain(domain: string): string {
  const labels = domain.split('.');
  if (labels.length <= 2) return domain;
  const keep = labels.length >= 3 && SECOND_LEVEL.has(labels[labels.length - 2]!) && labels[labels.length - 1]!.length === 2 ? 3 : 2;
  return labels.slice(-keep).join('.');
}
