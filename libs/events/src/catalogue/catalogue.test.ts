import { describe, expect, it } from 'vitest';
import { v1 } from '@aimass/proto';
import { partitionOf, subjectMatches } from '../subjects.js';
import { MalformedEventError, decodeEvent, encodeEvent, newEnvelope } from './codec.js';
import { PayloadUnreadableError, plaintextSealer } from './sealer.js';
import {
  CONSENT_STREAM,
  FEEDBACK_PARTITIONS,
  FEEDBACK_STREAM,
  PLATFORM_STREAMS,
  consentChangedSubject,
  deadLetterSubject,
  DEAD_LETTER_STREAM,
  ERASURE_STREAM,
  erasureCompletedSubject,
  erasureRequestedSubject,
  feedbackSubject,
  modelUpdatedSubject,
  MODEL_EVENTS_STREAM,
} from './subjects.js';

/** True when some subject matches both filters (JetStream refuses streams whose subjects overlap). */
function overlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    if (x[i] === '>' || y[i] === '>') return i < x.length && i < y.length;
    if (i === x.length || i === y.length) return x.length === y.length;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
}

const pseudonym = 'a'.repeat(64);

describe('event catalogue', () => {
  it('puts one user in one partition and every subject in its stream', () => {
    const subject = feedbackSubject('t1', pseudonym);
    expect(subject).toBe(`aimass.t1.feedback.${partitionOf(pseudonym, FEEDBACK_PARTITIONS)}.${pseudonym}`);
    expect(FEEDBACK_STREAM.subjects.some((s) => subjectMatches(s, subject))).toBe(true);
    expect(MODEL_EVENTS_STREAM.subjects.some((s) => subjectMatches(s, modelUpdatedSubject('t1', pseudonym)))).toBe(true);
    expect(DEAD_LETTER_STREAM.subjects.some((s) => subjectMatches(s, deadLetterSubject('updater')))).toBe(true);
    expect(consentChangedSubject('t1', pseudonym)).toBe(`aimass.t1.consent.changed.${pseudonym}`);
    expect(CONSENT_STREAM.subjects.some((s) => subjectMatches(s, consentChangedSubject('t1', pseudonym)))).toBe(true);
    expect(erasureRequestedSubject('t1', pseudonym)).toBe(`aimass.t1.erasure.requested.${pseudonym}`);
    expect(erasureCompletedSubject('t1', 'personal-model', pseudonym)).toBe(`aimass.t1.erasure.completed.personal-model.${pseudonym}`);
    for (const subject of [erasureRequestedSubject('t1', pseudonym), erasureCompletedSubject('t1', 'updater', pseudonym)]) {
      expect(ERASURE_STREAM.subjects.some((s) => subjectMatches(s, subject))).toBe(true);
      expect(PLATFORM_STREAMS.filter((stream) => stream.subjects.some((s) => subjectMatches(s, subject)))).toEqual([ERASURE_STREAM]);
    }
  });

  it('keeps the subjects of different streams apart', () => {
    expect(overlap('aimass.*.feedback.>', 'aimass.t1.feedback.3.x')).toBe(true);
    expect(overlap('aimass.*.consent.changed.*', 'aimass.>')).toBe(true);
    expect(overlap('aimass.*.consent.changed.*', 'aimass.*.model.updated.*')).toBe(false);
    expect(overlap('aimass.*.erasure.>', 'aimass.*.feedback.>')).toBe(false);
    expect(PLATFORM_STREAMS).toContain(ERASURE_STREAM);
    for (const a of PLATFORM_STREAMS) {
      for (const b of PLATFORM_STREAMS) {
        if (a === b) continue;
        for (const x of a.subjects) for (const y of b.subjects) expect(overlap(x, y), `${a.name} ${x} / ${b.name} ${y}`).toBe(false);
      }
    }
  });

  it('round-trips an event and refuses one that is not what it claims', () => {
    const envelope = newEnvelope({ type: 'aimass.v1.PersonalModelUpdated', tenant: 't1', userPseudonym: pseudonym, producer: 'test' });
    const data = encodeEvent('aimass.v1.PersonalModelUpdated', { envelope, version: 3, previousVersion: 2, generalModel: undefined, exampleCount: 7, kind: v1.UpdateKind.UPDATE_KIND_TRAIN, lastAppliedSequence: 11 });
    const back = decodeEvent('aimass.v1.PersonalModelUpdated', data);
    expect(back.version).toBe(3);
    expect(back.lastAppliedSequence).toBe(11);
    expect(back.envelope.eventId).toBe(envelope.eventId);

    expect(() => decodeEvent('aimass.v1.FeedbackRecorded', data)).toThrow(/expected aimass.v1.FeedbackRecorded/);
    expect(() => decodeEvent('aimass.v1.PersonalModelUpdated', new Uint8Array([0xff, 0xff, 0xff]))).toThrow(MalformedEventError);
    const future = encodeEvent('aimass.v1.PersonalModelUpdated', { ...v1.PersonalModelUpdated.fromPartial({}), envelope: { ...envelope, schemaVersion: 9 } });
    expect(() => decodeEvent('aimass.v1.PersonalModelUpdated', future)).toThrow(/schema version 9/);
    const noTenant = encodeEvent('aimass.v1.PersonalModelUpdated', { ...v1.PersonalModelUpdated.fromPartial({}), envelope: { ...envelope, tenant: '' } });
    expect(() => decodeEvent('aimass.v1.PersonalModelUpdated', noTenant)).toThrow(/without a tenant/);
  });

  it('the plaintext sealer reads what it wrote and refuses a real cipher it has no key for', async () => {
    const sealer = plaintextSealer();
    const scope = { tenant: 't1', userPseudonym: pseudonym };
    const sealed = await sealer.seal(scope, new TextEncoder().encode('hello'), 'e1');
    expect(new TextDecoder().decode(await sealer.open(scope, sealed, 'e1'))).toBe('hello');
    await expect(sealer.open(scope, { ...sealed, algorithm: 'AES-256-GCM' }, 'e1')).rejects.toBeInstanceOf(PayloadUnreadableError);
  });
});
