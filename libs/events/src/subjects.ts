const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/** 32-bit FNV-1a of the UTF-8 bytes: stable across processes, versions and languages. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, FNV_PRIME) >>> 0;
  }
  return hash >>> 0;
}

/** The partition of a key: every event of one key lands in one partition, hence one ordered consumer. */
export function partitionOf(key: string, partitions: number): number {
  assertPartitions(partitions);
  return fnv1a32(key) % partitions;
}

/**
 * Subject of a keyed event: `<prefix>.<partition>.<key>[.<suffix>]`, e.g.
 * `aimass.t1.feedback.3.<pseudonym>`. The partition token sits right after the prefix so that
 * one consumer per partition can filter on `<prefix>.<partition>.>` (nats-server 2.9 has no
 * subject transforms to compute it server-side).
 */
export function keyedSubject(prefix: string, key: string, partitions: number, suffix?: string): string {
  assertSubject(prefix, 'prefix', false);
  assertToken(key, 'key');
  if (suffix !== undefined) assertSubject(suffix, 'suffix', false);
  const subject = `${prefix}.${partitionOf(key, partitions)}.${key}`;
  return suffix === undefined ? subject : `${subject}.${suffix}`;
}

/** The filter of partition `partition` of a keyed prefix (wildcards allowed in the prefix). */
export function partitionFilter(prefix: string, partition: number): string {
  assertSubject(prefix, 'prefix', true);
  if (!Number.isInteger(partition) || partition < 0) {
    throw new RangeError(`partition must be a non-negative integer, got ${partition}`);
  }
  return `${prefix}.${partition}.>`;
}

/** NATS subject matching: `*` matches one token, a final `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return p.length === s.length;
}

export function assertPartitions(partitions: number): void {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  }
}

const BAD_TOKEN = /[\s.*>]/;

function assertToken(token: string, what: string): void {
  if (token.length === 0 || BAD_TOKEN.test(token)) {
    throw new RangeError(`${what} must be one non-empty subject token without '.', '*', '>' or spaces: ${JSON.stringify(token)}`);
  }
}

function assertSubject(subject: string, what: string, wildcards: boolean): void {
  const tokens = subject.split('.');
  tokens.forEach((token, i) => {
    if (wildcards && (token === '*' || (token === '>' && i === tokens.length - 1))) return;
    assertToken(token, `every token of the ${what}`);
  });
}

/** A subject or filter: non-empty tokens, `*` anywhere, `>` only last. */
export function isValidFilter(subject: string): boolean {
  const tokens = subject.split('.');
  return tokens.every(
    (token, i) => token === '*' || (token === '>' && i === tokens.length - 1) || (token.length > 0 && !BAD_TOKEN.test(token)),
  );
}

/** One exact subject (tokens, no wildcards): what `purge` removes, so a typo cannot widen it. */
export function assertExactSubject(subject: string, what: string): void {
  const tokens = subject.split('.');
  if (subject.length === 0 || tokens.some((token) => token.length === 0 || BAD_TOKEN.test(token))) {
    throw new RangeError(`${what} needs one exact subject (non-empty tokens, no '*', '>' or spaces): ${JSON.stringify(subject)}`);
  }
}

const NAME = /^[A-Za-z0-9_-]+$/;

/** Stream, durable and bucket names: one token, no path or wildcard characters. */
export function assertName(name: string, what: string): void {
  if (!NAME.test(name)) throw new RangeError(`${what} must match ${NAME}: ${JSON.stringify(name)}`);
}
