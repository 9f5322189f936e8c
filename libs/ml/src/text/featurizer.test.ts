import { describe, expect, it } from 'vitest';
import { DEFAULT_TOKENIZER_CONFIG, createFeaturizer, extractFeatures, parseTokenizerConfig, tokenizerConfig, tokens } from './featurizer.js';
import { CHINESE_SPAM, JAPANESE_HAM, MULTIPART_SPAM, PLAIN_HAM } from './testing/mails.js';

const words = (text: string) => [...tokens(text, 40)].map((t) => t.token);

describe('tokens', () => {
  it('lowercases NFKC-normalized words of letters, digits and marks', () => {
    expect(words('ＦＲＥＥ Money!! 100% café—naïve ﬁle')).toEqual(['free', 'money', '100', 'café', 'naïve', 'file']);
    expect(words('Привет, мир; Straße')).toEqual(['привет', 'мир', 'straße']);
  });

  it('turns Chinese, Japanese and Korean runs into character bigrams, not one token', () => {
    expect(words('你好世界')).toEqual(['你好', '好世', '世界']);
    expect(words('中')).toEqual(['中']);
    // Kana and kanji form one run; the prolonged sound mark stays inside the katakana word.
    expect(words('コーヒー飲む')).toEqual(['コー', 'ーヒ', 'ヒー', 'ー飲', '飲む']);
    expect(words('안녕하세요')).toEqual(['안녕', '녕하', '하세', '세요']);
    // Latin letters glued to CJK stay a word of their own.
    expect(words('iPhone手机')).toEqual(['iphone', '手机']);
  });

  it('cuts over-long words', () => {
    expect(words('a'.repeat(100))).toEqual(['a'.repeat(40)]);
  });
});

describe('extractFeatures', () => {
  const config = tokenizerConfig();

  it('puts header features first, prefixed by field', () => {
    const features = extractFeatures(PLAIN_HAM, config);
    const header = features.filter((f) => f.includes(':'));
    expect(features.slice(0, header.length)).toEqual(header);
    expect(header).toEqual(
      expect.arrayContaining([
        'from_domain:example.org',
        'from_tld:org',
        'return_path_domain:example.org',
        'list_id:lunch.lists.example.org',
        'precedence:list',
        'x_mailer:mutt',
        'content_type:none',
        'part_type:text/plain',
        'subject:lunch',
        'subject:thursday',
        'header:received',
        'received:postfix',
        'message-id:1234',
      ]),
    );
    const multipart = extractFeatures(MULTIPART_SPAM, config);
    expect(multipart).toEqual(
      expect.arrayContaining([
        'from_domain:spam.example.biz',
        'reply_to_domain:other.example.com',
        'content_type:multipart/alternative',
        'part_type:image/gif',
        'html_in:text/html',
        'html_tag:script',
        'url_host:pills.example.com',
        'subject:free',
        'subject:money',
        'charset:iso-8859-1',
      ]),
    );
  });

  it('follows each body word with its word pair and fastText-style character 3-grams', () => {
    const features = extractFeatures('Subject: x\n\nfree money', config);
    const body = features.slice(features.indexOf('free'));
    expect(body).toEqual(['free', '<fr', 'fre', 'ree', 'ee>', 'money', 'free money', '<mo', 'mon', 'one', 'ney', 'ey>']);
    // A 1-letter word's only 3-gram would be the whole bracketed word, which the word already is.
    expect(extractFeatures('a', config)).toEqual(['a']);
  });

  it('keeps CJK bigrams as features without word pairs or subwords', () => {
    const chinese = extractFeatures(CHINESE_SPAM, config);
    expect(chinese).toEqual(expect.arrayContaining(['subject:中国', 'subject:国你', '你好', '好世', '世界', 'charset:gb2312']));
    expect(chinese.filter((f) => !f.includes(':')).some((f) => f.includes('<') || f.includes(' '))).toBe(false);
    expect(extractFeatures(JAPANESE_HAM, config)).toEqual(expect.arrayContaining(['subject:会議', '明日', 'コー', 'ヒー']));
  });

  it('keeps the first occurrence of repeated features when dedupe is on, and every one when off', () => {
    const text = 'spam spam spam';
    expect(extractFeatures(text, config).filter((f) => f === 'spam')).toHaveLength(1);
    expect(extractFeatures(text, tokenizerConfig({ dedupe: false })).filter((f) => f === 'spam')).toHaveLength(3);
  });

  it('caps the total at maxFeatures and the header part at maxHeaderFeatures', () => {
    const small = tokenizerConfig({ maxFeatures: 20, maxHeaderFeatures: 5 });
    const features = extractFeatures(PLAIN_HAM, small);
    expect(features).toHaveLength(20);
    expect(features.filter((f) => f.includes(':') && !f.includes(' '))).toHaveLength(5);
    const long = Array.from({ length: 5000 }, (_, i) => `w${i}`).join(' ');
    expect(extractFeatures(long, config)).toHaveLength(config.maxFeatures);
  });

  it('featurizes a multi-megabyte body quickly: only its start is read', () => {
    const huge = 'Subject: big\n\n' + '. '.repeat(2_000_000) + 'late words';
    const started = performance.now();
    const features = extractFeatures(huge, config);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(features).not.toContain('late');
  });
});

describe('createFeaturizer', () => {
  it('rebuilds the identical featurizer from the config serialized as JSON', () => {
    const a = createFeaturizer(tokenizerConfig({ bucketBits: 12, seed: 99 }));
    const b = createFeaturizer(parseTokenizerConfig(JSON.stringify(a.config)));
    for (const mail of [PLAIN_HAM, MULTIPART_SPAM, CHINESE_SPAM, JAPANESE_HAM, '']) {
      expect(Array.from(b.encode(mail).ids)).toEqual(Array.from(a.encode(mail).ids));
    }
    const other = createFeaturizer(tokenizerConfig({ bucketBits: 12, seed: 100 }));
    expect(Array.from(other.encode(PLAIN_HAM).ids)).not.toEqual(Array.from(a.encode(PLAIN_HAM).ids));
  });

  it('gives ids in [1, 2^bucketBits) in feature order', () => {
    const f = createFeaturizer(tokenizerConfig({ bucketBits: 10 }));
    const { ids, count } = f.encode(MULTIPART_SPAM);
    expect(count).toBe(ids.length);
    expect(count).toBe(f.features(MULTIPART_SPAM).length);
    expect(f.buckets).toBe(1024);
    for (const id of ids) {
      expect(id).toBeGreaterThan(0);
      expect(id).toBeLessThan(1024);
    }
  });

  it('pads rows with 0 to maxFeatures for the ONNX input, row-major in a batch', () => {
    const f = createFeaturizer(tokenizerConfig({ maxFeatures: 64, maxHeaderFeatures: 16 }));
    const row = f.encodePadded('hello world');
    const { ids } = f.encode('hello world');
    expect(row).toHaveLength(64);
    expect(Array.from(row.slice(0, ids.length), Number)).toEqual(Array.from(ids));
    expect(row.slice(ids.length).every((v) => v === 0n)).toBe(true);
    const batch = f.encodeBatch(['hello world', PLAIN_HAM]);
    expect(batch).toHaveLength(128);
    expect(Array.from(batch.slice(0, 64))).toEqual(Array.from(row));
    expect(Array.from(batch.slice(64))).toEqual(Array.from(f.encodePadded(PLAIN_HAM)));
  });

  it('is deterministic across calls (no state leaks between texts)', () => {
    const f = createFeaturizer();
    const first = Array.from(f.encode(MULTIPART_SPAM).ids);
    f.encode(CHINESE_SPAM);
    expect(Array.from(f.encode(MULTIPART_SPAM).ids)).toEqual(first);
  });
});

describe('parseTokenizerConfig', () => {
  it('accepts the defaults and rejects what serving could not reproduce', () => {
    expect(parseTokenizerConfig(JSON.stringify(DEFAULT_TOKENIZER_CONFIG))).toEqual(DEFAULT_TOKENIZER_CONFIG);
    expect(() => parseTokenizerConfig({ ...DEFAULT_TOKENIZER_CONFIG, version: 2 })).toThrow(/version/);
    expect(() => parseTokenizerConfig({ ...DEFAULT_TOKENIZER_CONFIG, hash: 'fnv1a' })).toThrow(/hash/);
    expect(() => parseTokenizerConfig({ ...DEFAULT_TOKENIZER_CONFIG, bucketBits: 40 })).toThrow(/bucketBits/);
    expect(() => parseTokenizerConfig({ ...DEFAULT_TOKENIZER_CONFIG, charNgrams: [4, 3] })).toThrow(/charNgrams/);
    expect(() => parseTokenizerConfig({ ...DEFAULT_TOKENIZER_CONFIG, maxHeaderFeatures: 5000 })).toThrow(/maxHeaderFeatures/);
    expect(() => parseTokenizerConfig('null')).toThrow(/object/);
  });
});
