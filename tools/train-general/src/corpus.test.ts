import { describe, expect, it } from 'vitest';
import { corpusFrom, dataHash, type CorpusMail } from './corpus.js';

const mail = (group: string, id: string, value = `md5-${group}-${id}`): CorpusMail => ({
  id,
  group,
  checksum: { type: 'MD5', value },
  text: `Subject: ${group} ${id}\n\nbody`,
});

const mails = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'].flatMap((g) =>
  Array.from({ length: 40 }, (_, i) => mail(g, String(i).padStart(5, '0'))),
);

describe('dataHash', () => {
  it('depends on ids and checksums, not on order', () => {
    const h = dataHash(mails);
    expect(h).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(dataHash([...mails].reverse())).toBe(h);
    expect(dataHash(mails.slice(1))).not.toBe(h);
    const changed = mails.map((m, i) => (i === 3 ? { ...m, checksum: { type: 'MD5', value: 'other' } } : m));
    expect(dataHash(changed)).not.toBe(h);
  });
});

describe('corpusFrom', () => {
  it('labels the spam-* groups spam and keys items by group and id', () => {
    const corpus = corpusFrom(mails, 'test');
    expect(corpus.items).toHaveLength(200);
    expect(corpus.items.find((i) => i.key === 'spam-1/00003')).toMatchObject({ label: 'spam', group: 'spam-1' });
    expect(corpus.items.find((i) => i.key === 'hard-ham-1/00003')).toMatchObject({ label: 'ham', group: 'hard-ham-1' });
    expect(corpus.groups).toEqual({ 'easy-ham-1': 40, 'easy-ham-2': 40, 'hard-ham-1': 40, 'spam-1': 40, 'spam-2': 40 });
  });

  it('limits to a hash-chosen subset that spans every group and does not depend on input order', () => {
    const a = corpusFrom(mails, 'test', 50);
    const b = corpusFrom([...mails].reverse(), 'test', 50);
    expect(a.items.map((i) => i.key)).toEqual(b.items.map((i) => i.key));
    expect(a.dataHash).toBe(b.dataHash);
    expect(a.items).toHaveLength(50);
    expect(Object.keys(a.groups)).toHaveLength(5);
    expect(a.dataHash).toBe(dataHash(mails.filter((m) => a.items.some((i) => i.key === `${m.group}/${m.id}`))));
  });
});
