import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalRecord, hashMatches, recordHash, verifyChain, type ConsentRecord } from './chain.js';
import { advanceHead, nextRecord, type ConsentChange, type ConsentHead } from './decisions.js';

const owner = { tenant: 't1', userPseudonym: 'a'.repeat(32) };
const at = (s: number) => new Date(Date.UTC(2026, 11, 5, 10, 0, s));

function change(purpose: ConsentChange['purpose'], state: ConsentChange['state'], policyVersion = 'v1'): ConsentChange {
  return { purpose, state, policyVersion, source: 'web-settings', decidedAt: undefined };
}

/** A chain of `changes`, appended one after the other, with its head. */
function chain(changes: ConsentChange[]): { records: ConsentRecord[]; head: ConsentHead | undefined } {
  let head: ConsentHead | undefined;
  const records: ConsentRecord[] = [];
  changes.forEach((c, i) => {
    const r = nextRecord(owner, head, c, at(i));
    records.push(r);
    head = advanceHead(head, r);
  });
  return { records, head };
}

const FOUR = [change('personalization', 'granted'), change('training', 'granted'), change('training', 'withdrawn'), change('personalization', 'denied', 'v2')];

describe('the consent hash chain', () => {
  it('encodes a record canonically: one fixed JSON array, names in lower case, times in UTC with milliseconds', () => {
    const r = chain([change('training', 'granted')]).records[0]!;
    expect(canonicalRecord(owner, r)).toBe(
      `["aimass/consent-record/v1","t1","${owner.userPseudonym}",1,"training","granted","none","v1","web-settings","2026-12-05T10:00:00.000Z","2026-12-05T10:00:00.000Z"]`,
    );
    // Text that could confuse a naive concatenation stays unambiguous.
    const tricky = { ...r, policyVersion: 'v1","x', source: 'a\nb' };
    expect(JSON.parse(canonicalRecord(owner, tricky))).toContain('v1","x');
  });

  it('hashes SHA-256 over the previous hash (the genesis value for the first) and the canonical record', () => {
    const { records } = chain(FOUR.slice(0, 2));
    const [first, second] = records as [ConsentRecord, ConsentRecord];
    expect(first.prevHash).toBe('');
    expect(first.hash).toBe(createHash('sha256').update(`${GENESIS_HASH}\n${canonicalRecord(owner, first)}`).digest('hex'));
    expect(second.prevHash).toBe(first.hash);
    expect(second.hash).toBe(createHash('sha256').update(`${first.hash}\n${canonicalRecord(owner, second)}`).digest('hex'));
    expect(second.previousState).toBe('none');
  });

  it('binds each record to its tenant and user: the same record under another user does not verify', () => {
    const { records, head } = chain(FOUR);
    expect(verifyChain(owner, records, head)).toEqual({ ok: true, verified: 4 });
    expect(verifyChain({ ...owner, userPseudonym: 'b'.repeat(32) }, records, head)).toMatchObject({ ok: false, firstBad: 1 });
    expect(verifyChain({ ...owner, tenant: 't2' }, records, head)).toMatchObject({ ok: false, firstBad: 1 });
  });

  it('verifies an empty history without a head, and tracks the previous state per purpose', () => {
    expect(verifyChain(owner, [], undefined)).toEqual({ ok: true, verified: 0 });
    const { records } = chain(FOUR);
    expect(records.map((r) => r.previousState)).toEqual(['none', 'none', 'granted', 'granted']);
  });

  it('detects a modified record, naming it', () => {
    const { records, head } = chain(FOUR);
    for (const edit of [{ state: 'granted' as const }, { policyVersion: 'v9' }, { source: 'forged' }, { recordedAt: at(59) }, { decidedAt: at(58) }, { purpose: 'personalization' as const }]) {
      const altered = records.map((r, i) => (i === 2 ? { ...r, ...edit } : r));
      expect(hashMatches(owner, altered[2]!)).toBe(false);
      expect(verifyChain(owner, altered, head)).toEqual({ ok: false, verified: 2, firstBad: 3, reason: 'record 3 does not match its hash: its content was modified' });
    }
  });

  it('detects a modified record whose hash was recomputed: the next record no longer links to it', () => {
    const { records, head } = chain(FOUR);
    const forged = { ...records[1]!, state: 'denied' as const };
    const rehashed = { ...forged, hash: recordHash(owner, forged) };
    const altered = [records[0]!, rehashed, ...records.slice(2)];
    expect(verifyChain(owner, altered, head)).toMatchObject({ ok: false, firstBad: 3, reason: expect.stringMatching(/record 3 does not link to record 2/) });
  });

  it('detects a deleted record, in the middle and at the end', () => {
    const { records, head } = chain(FOUR);
    expect(verifyChain(owner, [records[0]!, records[2]!, records[3]!], head)).toMatchObject({ ok: false, verified: 1, firstBad: 2, reason: expect.stringMatching(/record 2 is missing/) });
    expect(verifyChain(owner, records.slice(0, 3), head)).toMatchObject({ ok: false, verified: 3, firstBad: 4, reason: expect.stringMatching(/record 4 is missing: the history ends at record 3/) });
    expect(verifyChain(owner, records, undefined)).toMatchObject({ ok: false, reason: expect.stringMatching(/no head/) });
  });

  it('detects reordered records, whether the documents or their sequence numbers were swapped', () => {
    const { records, head } = chain(FOUR);
    const swapped = [records[0]!, records[2]!, records[1]!, records[3]!];
    expect(verifyChain(owner, swapped, head)).toMatchObject({ ok: false, firstBad: 2 });
    const renumbered = [records[0]!, { ...records[2]!, sequence: 2 }, { ...records[1]!, sequence: 3 }, records[3]!];
    expect(verifyChain(owner, renumbered, head)).toMatchObject({ ok: false, firstBad: 2 });
  });

  it('detects an inserted record, in the middle and beyond the head', () => {
    const { records, head } = chain(FOUR);
    const extra = nextRecord(owner, advanceHead(undefined, records[0]!), change('training', 'granted'), at(30));
    expect(verifyChain(owner, [records[0]!, extra, ...records.slice(1)], head)).toMatchObject({ ok: false, firstBad: 3, reason: expect.stringMatching(/record 2 appears again/) });
    const renumbered = [records[0]!, extra, ...records.slice(1).map((r) => ({ ...r, sequence: r.sequence + 1 }))];
    expect(verifyChain(owner, renumbered, head)).toMatchObject({ ok: false, firstBad: 3 });
    const beyond = nextRecord(owner, head, change('training', 'granted'), at(40));
    expect(verifyChain(owner, [...records, beyond], head)).toMatchObject({ ok: false, verified: 4, firstBad: 5, reason: expect.stringMatching(/beyond the head/) });
  });

  it('detects a replaced last record and a head that names another hash', () => {
    const { records, head } = chain(FOUR);
    expect(verifyChain(owner, records, { ...head!, hash: 'f'.repeat(64) })).toMatchObject({ ok: false, firstBad: 4, reason: expect.stringMatching(/not the one the head names/) });
  });

  it('detects a previous state that disagrees with the history even when the hash was recomputed', () => {
    const { records, head } = chain(FOUR.slice(0, 3));
    const forged = { ...records[2]!, previousState: 'denied' as const };
    const rehashed = { ...forged, hash: recordHash(owner, forged) };
    const rehead = { ...head!, hash: rehashed.hash };
    expect(verifyChain(owner, [records[0]!, records[1]!, rehashed], rehead)).toMatchObject({ ok: false, firstBad: 3, reason: expect.stringMatching(/state before it was denied, the history says granted/) });
  });
});
