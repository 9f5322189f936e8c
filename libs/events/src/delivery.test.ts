import { describe, expect, it } from 'vitest';
import { backoffDelay, deadLetterHeaders, decide, DeadLetterHeaders } from './delivery.js';
import type { DeliveredEvent } from './types.js';

const event = (deliveryCount: number): DeliveredEvent => ({
  subject: 'ev.t1.feedback.3.ps1',
  data: new Uint8Array([1, 2]),
  headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
  dedupeId: 'fb-1',
  sequence: 42,
  deliveryCount,
  partition: 3,
  publishedAt: new Date('2025-01-01T00:00:00Z'),
});
const policy = { maxDeliver: 3, backoffMs: [100, 1000] };
const failing = async () => {
  throw new Error('boom');
};

describe('backoffDelay', () => {
  it('takes the entry of the failed attempt and repeats the last one', () => {
    expect([1, 2, 3, 9].map((n) => backoffDelay(n, [100, 1000]))).toEqual([100, 1000, 1000, 1000]);
    expect(backoffDelay(1, [])).toBe(0);
  });
});

describe('decide', () => {
  it('acks when the handler resolves', async () => {
    expect(await decide(async () => undefined, event(1), policy)).toEqual({ action: 'ack' });
  });

  it('retries with the back-off of the attempt until maxDeliver, then dead-letters with the reason', async () => {
    expect(await decide(failing, event(1), policy)).toMatchObject({ action: 'retry', delayMs: 100, reason: 'boom' });
    expect(await decide(failing, event(2), policy)).toMatchObject({ action: 'retry', delayMs: 1000 });
    expect(await decide(failing, event(3), policy)).toMatchObject({ action: 'dead-letter', reason: 'boom', attempts: 3 });
  });

  it('dead-letters without running the handler when earlier deliveries never answered (crash, ackWait)', async () => {
    let ran = false;
    const handler = async () => {
      ran = true;
    };
    expect(await decide(handler, event(4), policy)).toMatchObject({ action: 'dead-letter', attempts: 3 });
    expect(await decide(handler, event(4), policy, 'boom')).toMatchObject({ reason: 'boom' });
    expect(ran).toBe(false);
  });
});

describe('deadLetterHeaders', () => {
  it('keeps the original headers and says why, how often, and where the event came from, on one line', () => {
    const headers = deadLetterHeaders(event(3), 'EVENTS', 'updater', 'bad\r\ninput', 3);
    expect(headers).toEqual({
      traceparent: event(3).headers['traceparent'],
      [DeadLetterHeaders.reason]: 'bad input',
      [DeadLetterHeaders.attempts]: '3',
      [DeadLetterHeaders.subject]: 'ev.t1.feedback.3.ps1',
      [DeadLetterHeaders.sequence]: '42',
      [DeadLetterHeaders.stream]: 'EVENTS',
      [DeadLetterHeaders.durable]: 'updater',
      [DeadLetterHeaders.dedupeId]: 'fb-1',
      [DeadLetterHeaders.publishedAt]: '2025-01-01T00:00:00.000Z',
    });
    expect(deadLetterHeaders(event(3), 'S', 'd', 'x'.repeat(5000), 3)[DeadLetterHeaders.reason]).toHaveLength(1024);
  });
});
