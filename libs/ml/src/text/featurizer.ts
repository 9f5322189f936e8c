import { bucketOf } from './hash.js';
import { headerValue, parseMail, type ParsedMail } from './mime.js';

/**
 * Everything that determines the ids a text becomes. It is stored in the model's metadata
 * (`aimass.tokenizer`), and serving rebuilds the featurizer from it alone, so a model and the
 * features it was trained on can never drift apart.
 */
export interface TokenizerConfig {
  /** Version of the feature-extraction rules in this file; bump on any change to them. */
  version: 1;
  /** Hash function: MurmurHash3 x86 32-bit of the feature's UTF-8 bytes. */
  hash: 'murmur3_32_utf8';
  seed: number;
  /** The vocabulary has 2^bucketBits rows; id 0 is padding, features map to 1 .. 2^bucketBits-1. */
  bucketBits: number;
  /** fastText-style character n-grams of each word with `<` `>` boundary markers; [0, 0] turns them off. */
  charNgrams: [min: number, max: number];
  /** Word n-grams up to this length (1 = words only, 2 = also adjacent word pairs). */
  wordNgrams: number;
  /** The ONNX input width: at most this many ids per text, padded with 0 up to it. */
  maxFeatures: number;
  /** Header and other whole-message features come first and take at most this many slots. */
  maxHeaderFeatures: number;
  /** Longer words (base64 residue, long URLs) are cut to this many characters. */
  maxWordLength: number;
  /** Keep only the first occurrence of each body feature: more of a long mail fits in maxFeatures. */
  dedupe: boolean;
}

export const DEFAULT_TOKENIZER_CONFIG: TokenizerConfig = Object.freeze({
  version: 1,
  hash: 'murmur3_32_utf8',
  seed: 0x5eed,
  bucketBits: 18,
  charNgrams: Object.freeze([3, 3]) as unknown as [number, number],
  wordNgrams: 2,
  maxFeatures: 2048,
  maxHeaderFeatures: 512,
  maxWordLength: 40,
  dedupe: true,
});

export function tokenizerConfig(overrides: Partial<Omit<TokenizerConfig, 'version' | 'hash'>> = {}): TokenizerConfig {
  return parseTokenizerConfig({ ...DEFAULT_TOKENIZER_CONFIG, ...overrides });
}

/** Validates a config read from model metadata (a JSON string or the parsed object). */
export function parseTokenizerConfig(input: unknown): TokenizerConfig {
  const value: unknown = typeof input === 'string' ? JSON.parse(input) : input;
  if (typeof value !== 'object' || value === null) throw new TypeError('tokenizer config: expected an object');
  const v = value as Record<string, unknown>;
  if (v.version !== 1) throw new TypeError(`tokenizer config: unsupported version ${String(v.version)}`);
  if (v.hash !== 'murmur3_32_utf8') throw new TypeError(`tokenizer config: unsupported hash ${String(v.hash)}`);
  const int = (name: string, min: number, max: number): number => {
    const n = v[name];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      throw new TypeError(`tokenizer config: ${name} must be an integer in [${min}, ${max}]`);
    }
    return n;
  };
  const ngrams = v.charNgrams;
  if (!Array.isArray(ngrams) || ngrams.length !== 2 || !ngrams.every((n) => Number.isInteger(n) && n >= 0 && n <= 8) || ngrams[0] > ngrams[1]) {
    throw new TypeError('tokenizer config: charNgrams must be [min, max] with 0 <= min <= max <= 8');
  }
  if (typeof v.dedupe !== 'boolean') throw new TypeError('tokenizer config: dedupe must be a boolean');
  const maxFeatures = int('maxFeatures', 1, 65536);
  return {
    version: 1,
    hash: 'murmur3_32_utf8',
    seed: int('seed', 0, 0xffffffff),
    bucketBits: int('bucketBits', 2, 24),
    charNgrams: [ngrams[0] as number, ngrams[1] as number],
    wordNgrams: int('wordNgrams', 1, 3),
    maxFeatures,
    maxHeaderFeatures: int('maxHeaderFeatures', 0, maxFeatures),
    maxWordLength: int('maxWordLength', 1, 1024),
    dedupe: v.dedupe,
  };
}

export interface Features {
  /** Bucket ids in feature order (header features first, then body by position); never 0. */
  ids: Int32Array;
  /** ids.length, the number of non-padding slots. */
  count: number;
}

export interface Featurizer {
  readonly config: TokenizerConfig;
  /** 2^bucketBits, the row count of the embedding table. */
  readonly buckets: number;
  /** The feature strings before hashing, for inspection and tests. */
  features(text: string): string[];
  encode(text: string): Features;
  /** One row of the ONNX `ids` input: int64 [maxFeatures], 0-padded. */
  encodePadded(text: string): BigInt64Array;
  /** The whole ONNX `ids` input for a batch: int64 [texts.length * maxFeatures], row-major, 0-padded. */
  encodeBatch(texts: readonly string[]): BigInt64Array;
}

export function createFeaturizer(config: TokenizerConfig = DEFAULT_TOKENIZER_CONFIG): Featurizer {
  const cfg = parseTokenizerConfig(config);
  const buckets = 2 ** cfg.bucketBits;
  const encode = (text: string): Features => {
    const strings = extractFeatures(text, cfg);
    const ids = new Int32Array(strings.length);
    for (let i = 0; i < strings.length; i++) ids[i] = bucketOf(strings[i]!, cfg.seed, buckets);
    return { ids, count: ids.length };
  };
  return {
    config: cfg,
    buckets,
    features: (text) => extractFeatures(text, cfg),
    encode,
    encodePadded: (text) => padIds(encode(text).ids, cfg.maxFeatures),
    encodeBatch: (texts) => {
      const width = cfg.maxFeatures;
      const out = new BigInt64Array(texts.length * width);
      texts.forEach((text, row) => {
        const { ids } = encode(text);
        for (let i = 0; i < ids.length && i < width; i++) out[row * width + i] = BigInt(ids[i]!);
      });
      return out;
    },
  };
}

/** Copies ids into a 0-padded int64 row of `width` (truncating if longer). */
export function padIds(ids: Int32Array, width: number): BigInt64Array {
  const row = new BigInt64Array(width);
  const n = Math.min(ids.length, width);
  for (let i = 0; i < n; i++) row[i] = BigInt(ids[i]!);
  return row;
}

// Han, kana and Hangul, plus the prolonged sound mark (Script=Common) that sits inside katakana words.
const CJK_RUN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u30fc\uff70]+/u;
const WORD = /[\p{L}\p{N}\p{M}]+/gu;
const SPLIT_CJK = /([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u30fc\uff70]+)/u;
/**
 * Only the start of each part is read: maxFeatures fill long before this in any real mail, and
 * normalizing a multi-megabyte body to read its first words would be wasted work.
 */
const MAX_PART_CHARS = 1 << 18;
const SURROGATE = /[\ud800-\udfff]/;
const URL_HOST = /\b(?:https?:\/\/|www\.)([\w.-]+)/gi;

export function normalizeText(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

/**
 * Text tokens: lowercased NFKC words of letters, digits and marks; runs of CJK characters become
 * overlapping character bigrams (a lone character stays a unigram), since those scripts do not
 * separate words with spaces. `kind` tells the caller which tokens get word n-grams and subwords.
 */
export function* tokens(text: string, maxWordLength: number): Generator<{ token: string; cjk: boolean }> {
  for (const match of normalizeText(text).matchAll(WORD)) {
    const word = match[0];
    if (!CJK_RUN.test(word)) {
      yield { token: cut(word, maxWordLength), cjk: false };
      continue;
    }
    for (const piece of word.split(SPLIT_CJK)) {
      if (piece === '') continue;
      if (!CJK_RUN.test(piece)) {
        yield { token: cut(piece, maxWordLength), cjk: false };
        continue;
      }
      const chars = Array.from(piece);
      if (chars.length === 1) yield { token: chars[0]!, cjk: true };
      for (let i = 0; i + 1 < chars.length; i++) yield { token: chars[i]! + chars[i + 1]!, cjk: true };
    }
  }
}

function cut(word: string, max: number): string {
  return word.length <= max ? word : Array.from(word).slice(0, max).join('');
}

/**
 * The feature strings of a text, before hashing. Their shapes keep the namespaces apart without
 * prefixes on the most common kind: body words are bare (`free`), word pairs contain a space
 * (`free money`), character n-grams contain `<` or `>` or come from inside a word (`<fr`, `ree`),
 * header features contain a `:` (`from_domain:example.com`), which no word can.
 */
export function extractFeatures(text: string, config: TokenizerConfig): string[] {
  const mail = parseMail(text);
  const header = headerFeatures(mail, config).slice(0, config.maxHeaderFeatures);
  const out = header;
  const budget = config.maxFeatures;
  const seen = config.dedupe ? new Set<string>() : undefined;
  const push = (feature: string): boolean => {
    if (out.length >= budget) return false;
    if (seen) {
      if (seen.has(feature)) return true;
      seen.add(feature);
    }
    out.push(feature);
    return true;
  };
  const [minN, maxN] = config.charNgrams;
  for (const part of mail.parts) {
    if (!part.text) continue;
    let previous: string | undefined;
    for (const { token, cjk } of tokens(part.text.slice(0, MAX_PART_CHARS), config.maxWordLength)) {
      if (!push(token)) return out;
      if (cjk) {
        previous = undefined;
        continue;
      }
      if (config.wordNgrams >= 2 && previous !== undefined && !push(previous + ' ' + token)) return out;
      if (minN > 0) {
        const bracketed = '<' + token + '>';
        // Code points, not UTF-16 units, so an n-gram never splits a surrogate pair; most words are
        // BMP-only and take the cheap path.
        const chars = SURROGATE.test(bracketed) ? Array.from(bracketed) : undefined;
        const length = chars ? chars.length : bracketed.length;
        for (let n = minN; n <= maxN; n++) {
          // The whole bracketed word is the word feature itself.
          if (n >= length) break;
          for (let i = 0; i + n <= length; i++) {
            if (!push(chars ? chars.slice(i, i + n).join('') : bracketed.slice(i, i + n))) return out;
          }
        }
      }
      previous = token;
    }
  }
  return out;
}

function headerFeatures(mail: ParsedMail, config: TokenizerConfig): string[] {
  const features: string[] = [];
  const seen = new Set<string>();
  const add = (feature: string) => {
    if (!seen.has(feature)) {
      seen.add(feature);
      features.push(feature);
    }
  };
  const h = mail.headers;
  const domainOf = (value: string | undefined): string | undefined => {
    const m = value?.match(/@([\w.-]+\.[a-z]{2,})/i);
    return m ? normalizeText(m[1]!).replace(/\.$/, '') : undefined;
  };
  const fromDomain = domainOf(headerValue(h, 'from'));
  if (fromDomain) {
    add(`from_domain:${fromDomain}`);
    add(`from_tld:${fromDomain.slice(fromDomain.lastIndexOf('.') + 1)}`);
  }
  const replyTo = domainOf(headerValue(h, 'reply-to'));
  if (replyTo) add(`reply_to_domain:${replyTo}`);
  const returnPath = domainOf(headerValue(h, 'return-path'));
  if (returnPath) add(`return_path_domain:${returnPath}`);
  const listId = headerValue(h, 'list-id');
  if (listId) add(`list_id:${normalizeText(listId.match(/<([^>]+)>/)?.[1] ?? listId).trim()}`);
  const precedence = headerValue(h, 'precedence');
  if (precedence) add(`precedence:${normalizeText(precedence).trim()}`);
  const mailer = headerValue(h, 'x-mailer') ?? headerValue(h, 'user-agent');
  if (mailer) add(`x_mailer:${normalizeText(mailer).match(/[\p{L}\p{N}.-]+/u)?.[0] ?? ''}`);
  const topType = headerValue(h, 'content-type');
  if (h.length > 0) add(`content_type:${topType ? (topType.split(';')[0] ?? '').trim().toLowerCase() : 'none'}`);
  if (h.length > 0) for (const part of mail.parts) add(`part_type:${part.contentType}`);
  for (const part of mail.parts) if (part.charset) add(`charset:${part.charset}`);
  const subject = headerValue(h, 'subject');
  if (subject !== undefined) {
    add(subject.trim() === '' ? 'subject:<empty>' : 'subject:<present>');
    for (const { token } of tokens(subject, config.maxWordLength)) add(`subject:${token}`);
  }
  // Which fields are present says much about the sending software.
  for (const { name } of h) add(`header:${name}`);
  for (const part of mail.parts) {
    if (!part.htmlTags) continue;
    add(`html_in:${part.contentType}`);
    for (const tag of part.htmlTags) add(`html_tag:${tag}`);
  }
  for (const part of mail.parts) {
    for (const m of part.text.slice(0, MAX_PART_CHARS).matchAll(URL_HOST)) add(`url_host:${normalizeText(m[1]!).replace(/^www\./, '').replace(/\.$/, '')}`);
  }
  // Words of every other field, keyed by the field: relays, dates and mailer names in Received,
  // Message-Id and X-* fields separate bulk senders from people better than their mere presence.
  for (const { name, value } of h) {
    if (name === 'subject') continue;
    for (const { token } of tokens(value, config.maxWordLength)) add(`${name}:${token}`);
  }
  return features;
}
