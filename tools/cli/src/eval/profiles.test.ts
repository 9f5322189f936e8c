import { beforeAll, describe, expect, it } from 'vitest';
import { loadSpamAssassin } from '@aimass/train-general';
import { evalMails, type EvalMail } from './corpus.js';
import { PROFILES, buildUsers, userLabel, type SimulatedUser } from './profiles.js';

let mails: EvalMail[];
const profile = (name: string) => PROFILES.find((p) => p.name === name)!;

beforeAll(() => {
  mails = evalMails(loadSpamAssassin());
});

describe('profiles on the SpamAssassin corpus', () => {
  it('select coherent slices of the expected sizes', () => {
    const slice = (name: string) => mails.filter(profile(name).inSlice);
    const hard = slice('newsletter-averse');
    const insurance = slice('insurance-agent');
    const list = slice('list-muter');
    expect(hard).toHaveLength(250);
    expect(hard.every((m) => m.group === 'hard-ham-1' && m.corpusLabel === 'ham')).toBe(true);
    expect(insurance).toHaveLength(81);
    expect(new Set(insurance.map((m) => m.fromDomain))).toEqual(new Set(['insurancemail.net', 'insiq.us']));
    expect(insurance.every((m) => m.corpusLabel === 'spam')).toBe(true);
    expect(list).toHaveLength(397);
    expect(list.every((m) => m.listId === 'rpm-zzzlist.freshrpms.net' && m.corpusLabel === 'ham')).toBe(true);
    expect(slice('neutral')).toHaveLength(0);
    // The general model's hold-out split (20% by key hash) leaves each slice some mails it never saw.
    expect([hard, insurance, list].map((s) => s.filter((m) => m.generalHeldOut).length)).toEqual([59, 16, 75]);
  });

  it('give the slice the other label and agree with the corpus elsewhere', () => {
    const mutedListMail = mails.find(profile('list-muter').inSlice)!;
    const otherHam = mails.find((m) => m.corpusLabel === 'ham' && !profile('list-muter').inSlice(m))!;
    const insuranceMail = mails.find(profile('insurance-agent').inSlice)!;
    const otherSpam = mails.find((m) => m.corpusLabel === 'spam' && !profile('insurance-agent').inSlice(m))!;
    expect(userLabel(profile('list-muter'), mutedListMail)).toBe('spam');
    expect(userLabel(profile('list-muter'), otherHam)).toBe('ham');
    expect(userLabel(profile('insurance-agent'), insuranceMail)).toBe('ham');
    expect(userLabel(profile('insurance-agent'), otherSpam)).toBe('spam');
    expect(userLabel(profile('neutral'), insuranceMail)).toBe('spam');
  });
});

describe('buildUsers', () => {
  let users: SimulatedUser[];
  beforeAll(() => {
    users = buildUsers(mails, { usersPerProfile: 2, seed: 7, streamLength: 2400, heldOut: 600, runId: 'r1' });
  });

  it('makes stable ids, two users per profile, at least two neutral ones', () => {
    expect(users.map((u) => u.id)).toEqual([
      'r1-newsletter-averse-1',
      'r1-newsletter-averse-2',
      'r1-insurance-agent-1',
      'r1-insurance-agent-2',
      'r1-list-muter-1',
      'r1-list-muter-2',
      'r1-neutral-1',
      'r1-neutral-2',
    ]);
    expect(buildUsers(mails, { usersPerProfile: 1, seed: 7, streamLength: 100, heldOut: 50, runId: 'q' }).filter((u) => u.profile.kind === 'neutral')).toHaveLength(2);
  });

  it('streams only mails the general model trained on and holds out only mails it never saw, disjointly', () => {
    for (const u of users) {
      expect(u.stream.every((m) => !m.generalHeldOut)).toBe(true);
      expect(u.heldOut.every((m) => m.generalHeldOut)).toBe(true);
      const streamKeys = new Set(u.stream.map((m) => m.key));
      expect(streamKeys.size).toBe(u.stream.length);
      expect(u.heldOut.some((m) => streamKeys.has(m.key))).toBe(false);
      expect(u.stream).toHaveLength(2400);
      expect(u.heldOut.length).toBeGreaterThan(500);
      expect(u.heldOut.length).toBeLessThanOrEqual(600);
    }
  });

  it('keeps the slice share of the held-out set close to the stream share', () => {
    for (const u of users.filter((x) => x.profile.kind === 'divergent')) {
      expect(u.sliceInStream).toBe(u.stream.filter(u.profile.inSlice).length);
      expect(u.sliceInHeldOut).toBe(u.heldOut.filter(u.profile.inSlice).length);
      expect(u.sliceInHeldOut).toBeGreaterThan(0);
      const streamShare = u.sliceInStream / u.stream.length;
      const heldShare = u.sliceInHeldOut / u.heldOut.length;
      expect(Math.abs(heldShare - streamShare)).toBeLessThan(0.02);
    }
    const insurance = users.find((u) => u.profile.name === 'insurance-agent')!;
    expect([insurance.sliceInStream, insurance.sliceInHeldOut]).toEqual([65, 16]);
    for (const u of users.filter((x) => x.profile.kind === 'neutral')) expect(u.heldOut).toHaveLength(600);
  });

  it('is the same for the same seed, and users of a profile get different mail', () => {
    const again = buildUsers(mails, { usersPerProfile: 2, seed: 7, streamLength: 2400, heldOut: 600, runId: 'r1' });
    expect(again.map((u) => u.stream.map((m) => m.key).join())).toEqual(users.map((u) => u.stream.map((m) => m.key).join()));
    const [a, b] = users.filter((u) => u.profile.name === 'neutral');
    expect(a!.stream.map((m) => m.key)).not.toEqual(b!.stream.map((m) => m.key));
  });
});
