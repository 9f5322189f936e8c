import { v1 } from '@aimass/proto';
import { waitUntil } from '@aimass/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createInProcessBus, type InProcessEventBus } from '../in-process/bus.js';
import type { DeliveredEvent } from '../types.js';
import { DeadLetterHeaders } from '../delivery.js';
import { decodeEvent, newEnvelope, publishEvent } from './codec.js';
import { derivedEventId, erasureCompletedEventId, erasureRequestedEventId, startErasureParticipant, type ErasureRequest } from './erasure.js';
import { ALL_ERASURE_COMPLETED, DEAD_LETTER_STREAM, ERASURE_STREAM, deadLetterSubject, erasureCompletedSubject, erasureRequestedSubject } from './subjects.js';

const T = 't1';
const USER = 'a'.repeat(32);
const FAST = { maxDeliver: 2, backoffMs: [10], ackWaitMs: 5_000 };

async function request(bus: InProcessEventBus, erasureId: string, round: number, subject = erasureRequestedSubject(T, USER)): Promise<string> {
  const eventId = erasureRequestedEventId(erasureId, round);
  await publishEvent(bus, subject, 'aimass.v1.ErasureRequested', {
    envelope: newEnvelope({ type: 'aimass.v1.ErasureRequested', tenant: T, userPseudonym: USER, producer: 'privacy', eventId }),
    erasureId,
    services: ['privacy', 'svc'],
  });
  return eventId;
}

async function collect(bus: InProcessEventBus, stream: string, filterSubject: string): Promise<DeliveredEvent[]> {
  const seen: DeliveredEvent[] = [];
  await bus.consume(
    { durable: `reader-${stream}`, stream, filterSubject, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: deadLetterSubject('reader') },
    async (e) => void seen.push(e),
  );
  return seen;
}

describe('erasure participant (in-process bus)', () => {
  let bus: InProcessEventBus;
  afterEach(async () => {
    await bus?.close();
  });

  it('derives stable, distinct event ids in the shape of a UUID v8', () => {
    expect(erasureRequestedEventId('e1', 0)).toBe(erasureRequestedEventId('e1', 0));
    expect(erasureRequestedEventId('e1', 1)).not.toBe(erasureRequestedEventId('e1', 0));
    expect(derivedEventId('a', 'b')).not.toBe(derivedEventId('ab'));
    expect(erasureCompletedEventId('svc', 'r1', v1.ErasureStatus.ERASURE_STATUS_COMPLETED)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('erases, confirms with the items deleted, confirms a new round again and ignores a repeated publish', async () => {
    bus = createInProcessBus();
    for (const s of [ERASURE_STREAM, DEAD_LETTER_STREAM]) await bus.ensureStream(s);
    const calls: ErasureRequest[] = [];
    const participant = await startErasureParticipant({
      bus,
      service: 'svc',
      consumer: FAST,
      erase: async (r) => {
        calls.push(r);
        return { itemsDeleted: calls.length === 1 ? 3 : 0 };
      },
    });
    const confirmations = await collect(bus, ERASURE_STREAM.name, ALL_ERASURE_COMPLETED);

    const first = await request(bus, 'e1', 0);
    await request(bus, 'e1', 0);
    await waitUntil(() => confirmations.length === 1, 'the first confirmation');
    expect(calls).toEqual([{ tenant: T, userPseudonym: USER, erasureId: 'e1', requestEventId: first, services: ['privacy', 'svc'] }]);
    const c = confirmations[0]!;
    expect(c.subject).toBe(erasureCompletedSubject(T, 'svc', USER));
    expect(c.dedupeId).toBe(erasureCompletedEventId('svc', first, v1.ErasureStatus.ERASURE_STATUS_COMPLETED));
    expect(decodeEvent('aimass.v1.ErasureCompleted', c.data)).toMatchObject({ service: 'svc', erasureId: 'e1', status: v1.ErasureStatus.ERASURE_STATUS_COMPLETED, itemsDeleted: 3, envelope: { producer: 'svc', userPseudonym: USER } });

    await request(bus, 'e1', 1);
    await waitUntil(() => confirmations.length === 2, 'the second round confirmed');
    expect(decodeEvent('aimass.v1.ErasureCompleted', confirmations[1]!.data)).toMatchObject({ status: v1.ErasureStatus.ERASURE_STATUS_COMPLETED, itemsDeleted: 0 });
    expect(calls).toHaveLength(2);
    expect(participant.stats()).toEqual({ completed: 2, failures: 0 });
    await participant.close();
  });

  it('answers FAILED with the reason on the last attempt and dead-letters the request; a request whose subject lies is never erased', async () => {
    bus = createInProcessBus();
    for (const s of [ERASURE_STREAM, DEAD_LETTER_STREAM]) await bus.ensureStream(s);
    let calls = 0;
    const participant = await startErasureParticipant({
      bus,
      service: 'broken',
      consumer: FAST,
      erase: () => {
        calls++;
        return Promise.reject(new Error('store unreachable'));
      },
    });
    const confirmations = await collect(bus, ERASURE_STREAM.name, ALL_ERASURE_COMPLETED);
    const dead = await collect(bus, DEAD_LETTER_STREAM.name, deadLetterSubject('broken-erasure'));

    await request(bus, 'e2', 0);
    await waitUntil(() => dead.length === 1, 'the request dead-lettered');
    expect(calls).toBe(2);
    expect(confirmations).toHaveLength(1);
    expect(decodeEvent('aimass.v1.ErasureCompleted', confirmations[0]!.data)).toMatchObject({ service: 'broken', status: v1.ErasureStatus.ERASURE_STATUS_FAILED, detail: 'store unreachable' });

    await request(bus, 'e3', 0, erasureRequestedSubject(T, 'b'.repeat(32)));
    await waitUntil(() => dead.length === 2, 'the lying request dead-lettered');
    expect(dead[1]!.headers[DeadLetterHeaders.reason]).toMatch(/names another tenant or user/);
    expect(calls).toBe(2);
    expect(participant.stats()).toEqual({ completed: 0, failures: 2 });
    await participant.close();
  });

  it('refuses a service name that is not one subject token', async () => {
    bus = createInProcessBus();
    await expect(startErasureParticipant({ bus, service: 'Personal.Model', erase: () => Promise.resolve({ itemsDeleted: 0 }) })).rejects.toThrow(/not a service name/);
  });
});
