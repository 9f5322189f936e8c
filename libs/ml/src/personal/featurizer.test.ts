import { describe, expect, it } from 'vitest';
import { addressOf, createPersonalFeaturizer, orgDomain, personalFeatureStrings, type PersonalInput } from './featurizer.js';

const mail = (headers: Record<string, string>, subject = 'Weekly deals', body = 'Big savings on shoes this week'): PersonalInput => ({
  mail: { subject, body, headers },
});

describe('createPersonalFeaturizer', () => {
  const f = createPersonalFeaturizer();

  it('gives sorted unique indices within the dimension, deterministically', () => {
    const input = mail({ From: 'Shop <News@Shop.Example.com>', 'List-Id': 'Deals <deals.shop.example.com>', To: 'me@home.example.org' });
    const a = f.featurize(input);
    const b = createPersonalFeaturizer().featurize(input);
    expect(a).toEqual(b);
    expect(a.dimension).toBe(2 ** 20);
    expect(f.dimension).toBe(2 ** 20);
    expect(a.indices.length).toBe(a.values.length);
    for (let i = 1; i < a.indices.length; i++) expect(a.indices[i]!).toBeGreaterThan(a.indices[i - 1]!);
    for (const i of a.indices) expect(i >= 0 && i < a.dimension).toBe(true);
  });

  it('L2-normalises the word block and gives each header feature weight 1 in the upper half', () => {
    const input = mail({ from: 'a@b.example.com', 'list-id': '<l.example.com>' }, 'hello hello', 'world');
    const out = f.featurize(input);
    const half = out.dimension / 2;
    const words = out.indices.map((i, k) => ({ i, v: out.values[k]! })).filter((e) => e.i < half);
    const header = out.indices.map((i, k) => ({ i, v: out.values[k]! })).filter((e) => e.i >= half);
    expect(words.length).toBe(2);
    expect(words.reduce((s, e) => s + e.v * e.v, 0)).toBeCloseTo(1, 6);
    // from_address, from_domain, from_org_domain (b.example.com → example.com), list_id
    expect(header.map((e) => e.v)).toEqual([1, 1, 1, 1]);
  });

  it('puts each header kind in its own slice, so the same value in two kinds never collides', () => {
    const small = createPersonalFeaturizer({ dimension: 1024 });
    const out = small.featurize(mail({ from: 'x@same.example', 'reply-to': 'y@same.example', to: 'z@same.example' }, '', ''));
    const slice = 1024 / 2 / 8;
    const slices = out.indices.map((i) => Math.floor((i - 512) / slice));
    // from_address 0, from_domain 1, reply_to_domain 4, to_domain 5
    expect(slices).toEqual([0, 1, 4, 5]);
  });

  it('marks mail that carries HTML with a body_format feature, from its media type or its body', () => {
    const small = createPersonalFeaturizer({ dimension: 1024 });
    const slice = 1024 / 2 / 8;
    const headerSlices = (input: PersonalInput) => small.featurize(input).indices.filter((i) => i >= 512).map((i) => Math.floor((i - 512) / slice));
    const html = [
      mail({ 'Content-Type': 'multipart/alternative; boundary="b"' }),
      mail({ 'content-type': 'text/html; charset=utf-8' }),
      mail({}, 'Sale', '<html><body><p>Cheap <b>shoes</b></p></body></html>'),
    ];
    for (const input of html) {
      expect(headerSlices(input)).toEqual([7]);
      expect(personalFeatureStrings(input).header.body_format).toBe('html');
    }
    // The three mark the same coordinate: one weight learns "formatted mail" whichever way it was told.
    expect(new Set(html.map((input) => small.featurize(input).indices.find((i) => i >= 512))).size).toBe(1);
    for (const input of [mail({}), mail({ 'content-type': 'text/plain; charset=us-ascii' }), mail({ 'content-type': 'multipart/mixed; boundary=x' })]) {
      expect(headerSlices(input)).toEqual([]);
    }
    // Plain text input has no headers, so no header features, HTML or not.
    expect(f.featurize({ text: '<html><body>Cheap shoes</body></html>' }).indices.every((i) => i < 2 ** 19)).toBe(true);
  });

  it("reads the Message-ID's host as the sending system, one value across a sender's addresses", () => {
    const idDomain = (id: string) => personalFeatureStrings(mail({ 'Message-ID': id })).header.message_id_domain;
    // One marketer's two From domains, one minting host.
    expect(idDomain('<LYRIS-1-2002.07.01@IQ.InsuranceIQ.com>')).toBe('insuranceiq.com');
    expect(idDomain('<x@mail2.insuranceiq.com>')).toBe('insuranceiq.com');
    // Numbered machines of one farm, named without a domain or by address, are one value.
    expect(idDomain('<1.2@abv-sfo1-ac-agent5>')).toBe(idDomain('<3.4@abv-sfo1-ac-agent7>'));
    expect(idDomain('<5@192.168.1.20>')).toBe('#.#');
    // Digits in a registered name are part of it.
    expect(idDomain('<y@mail.163.com>')).toBe('163.com');
    expect(idDomain('no host here')).toBeUndefined();
    // It shares the eighth slice with body_format, on its own coordinates.
    const small = createPersonalFeaturizer({ dimension: 1024 });
    const both = small.featurize(mail({ 'message-id': '<a@b.example.com>', 'content-type': 'text/html' }));
    expect(both.indices.filter((i) => i >= 512).map((i) => Math.floor((i - 512) / 64))).toEqual([7, 7]);
  });

  it('log term weighting ranks a repeated word above a single one', () => {
    const log = createPersonalFeaturizer({ termWeighting: 'log' });
    const out = log.featurize({ text: 'spam spam spam ham' });
    expect(out.values.length).toBe(2);
    const [a, b] = out.values as [number, number];
    expect(Math.max(a, b) / Math.min(a, b)).toBeCloseTo(1 + Math.log(3), 5);
  });

  it('reads plain text as a body (no header features) and HTML bodies as their text', () => {
    expect(f.featurize({ text: 'From: someone@example.com\nhello' }).indices.every((i) => i < 2 ** 19)).toBe(true);
    const strings = personalFeatureStrings(mail({}, 'Sale', '<html><body><p>Cheap <b>shoes</b></p></body></html>'));
    expect([...strings.words.keys()]).toEqual(['sale', 'cheap', 'shoes']);
  });

  it('caps the distinct words read', () => {
    const text = Array.from({ length: 2000 }, (_, i) => `w${i}`).join(' ');
    expect(createPersonalFeaturizer({ maxWords: 100 }).featurize({ text }).indices.length).toBeLessThanOrEqual(100);
  });

  it('gives empty features for empty input', () => {
    expect(f.featurize({ text: '' })).toEqual({ dimension: 2 ** 20, indices: [], values: [] });
  });

  it('rejects a dimension that is not a power of two', () => {
    expect(() => createPersonalFeaturizer({ dimension: 1000 })).toThrow(/power of two/);
  });
});

describe('address helpers', () => {
  it('extracts and lowercases addresses', () => {
    expect(addressOf('"Shop" <News@Shop.Example>')).toBe('news@shop.example');
    expect(addressOf('bob@example.net (Bob)')).toBe('bob@example.net');
    expect(addressOf('undisclosed-recipients:;')).toBeUndefined();
  });
  it('finds the organisation domain', () => {
    expect(orgDomain('news.mail.shop.co.uk')).toBe('shop.co.uk');
    expect(orgDomain('a.b.example.com')).toBe('example.com');
    expect(orgDomain('example.com')).toBe('example.com');
  });
});
