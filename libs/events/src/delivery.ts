import type { ConsumeOptions, DeliveredEvent, EventHandler } from './types.js';
import { assertName, assertPartitions, isValidFilter, partitionFilter } from './subjects.js';

/** Headers of a dead-lettered event, next to the original event's own headers. */
export const DeadLetterHeaders = {
  reason: 'aimass-dlq-reason',
  attempts: 'aimass-dlq-attempts',
  subject: 'aimass-dlq-subject',
  sequence: 'aimass-dlq-sequence',
  stream: 'aimass-dlq-stream',
  durable: 'aimass-dlq-durable',
  dedupeId: 'aimass-dlq-dedupe-id',
  publishedAt: 'aimass-dlq-published-at',
} as const;

export type Decision =
  | { action: 'ack' }
  | { action: 'retry'; delayMs: number; reason: string; error: unknown }
  | { action: 'dead-letter'; reason: string; attempts: number; error: unknown };

/** Delay before the delivery after failed attempt number `attempt` (1-based); the last entry repeats. */
export function backoffDelay(attempt: number, backoffMs: readonly number[]): number {
  if (backoffMs.length === 0) return 0;
  const index = Math.min(Math.max(attempt, 1), backoffMs.length) - 1;
  return backoffMs[index] ?? 0;
}

export function errorReason(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.length > 0 ? text : 'handler failed without a message';
}

/**
 * Runs the handler once and says what to do with the delivery. `priorFailure` is the last
 * known reason for this event (the handler failed and the dead-letter publish failed too).
 * A delivery beyond maxDeliver means earlier attempts ended without an answer (the consumer
 * crashed or overran ackWait): the event goes to the dead-letter subject without running the
 * handler again, so a poison event that kills its consumer cannot block its partition forever.
 */
export async function decide(
  handler: EventHandler,
  event: DeliveredEvent,
  policy: Pick<ConsumeOptions, 'maxDeliver' | 'backoffMs'>,
  priorFailure?: string,
): Promise<Decision> {
  if (event.deliveryCount > policy.maxDeliver) {
    return {
      action: 'dead-letter',
      reason: priorFailure ?? `not acknowledged after ${event.deliveryCount - 1} deliveries (consumer crashed or exceeded ackWait)`,
      attempts: event.deliveryCount - 1,
      error: undefined,
    };
  }
  try {
    await handler(event);
    return { action: 'ack' };
  } catch (error) {
    const reason = errorReason(error);
    if (event.deliveryCount >= policy.maxDeliver) {
      return { action: 'dead-letter', reason, attempts: event.deliveryCount, error };
    }
    return { action: 'retry', delayMs: backoffDelay(event.deliveryCount, policy.backoffMs), reason, error };
  }
}

/** Header values are single lines; reasons are bounded so one bad error cannot bloat the stream. */
function headerValue(text: string): string {
  const line = text.replace(/[\r\n]+/g, ' ').trim();
  return line.length > 1024 ? `${line.slice(0, 1021)}...` : line;
}

export function deadLetterHeaders(
  event: DeliveredEvent,
  stream: string,
  durable: string,
  reason: string,
  attempts: number,
): Record<string, string> {
  const headers: Record<string, string> = {
    ...event.headers,
    [DeadLetterHeaders.reason]: headerValue(reason),
    [DeadLetterHeaders.attempts]: String(attempts),
    [DeadLetterHeaders.subject]: event.subject,
    [DeadLetterHeaders.sequence]: String(event.sequence),
    [DeadLetterHeaders.stream]: stream,
    [DeadLetterHeaders.durable]: durable,
    [DeadLetterHeaders.publishedAt]: event.publishedAt.toISOString(),
  };
  if (event.dedupeId !== undefined) headers[DeadLetterHeaders.dedupeId] = event.dedupeId;
  return headers;
}

/** One dead-letter entry per (stream, group, event), however often the dead-lettering is retried. */
export function deadLetterDedupeId(stream: string, durable: string, sequence: number): string {
  return `dlq:${stream}:${durable}:${sequence}`;
}

/** The subject filter of one partition of a consumer group. */
export function consumerFilter(options: Pick<ConsumeOptions, 'filterSubject' | 'partitions'>, partition: number): string {
  if (options.partitions === undefined) {
    if (!isValidFilter(options.filterSubject)) throw new RangeError(`invalid filterSubject ${options.filterSubject}`);
    return options.filterSubject;
  }
  return partitionFilter(options.filterSubject, partition);
}

export function partitionCount(options: Pick<ConsumeOptions, 'partitions'>): number {
  return options.partitions ?? 1;
}

export function validateConsumeOptions(options: ConsumeOptions): void {
  assertName(options.durable, 'durable');
  assertName(options.stream, 'stream');
  if (options.partitions !== undefined) assertPartitions(options.partitions);
  consumerFilter(options, 0);
  if (!Number.isInteger(options.maxDeliver) || options.maxDeliver < 1) {
    throw new RangeError(`maxDeliver must be a positive integer, got ${options.maxDeliver}`);
  }
  if (options.backoffMs.some((d) => !Number.isFinite(d) || d < 0)) {
    throw new RangeError('backoffMs entries must be non-negative numbers');
  }
  if (!(options.ackWaitMs > 0)) throw new RangeError(`ackWaitMs must be positive, got ${options.ackWaitMs}`);
  if (options.deadLetterSubject.length === 0) throw new RangeError('deadLetterSubject is required');
}

/** A promise that can be resolved from outside: wakes sleeping loops early. */
export class Signal {
  private resolveFn: (() => void) | undefined;
  private promise: Promise<void>;

  constructor() {
    this.promise = new Promise((resolve) => (this.resolveFn = resolve));
  }

  fire(): void {
    const resolve = this.resolveFn;
    this.promise = new Promise((r) => (this.resolveFn = r));
    resolve?.();
  }

  /** Resolves on the next fire() or after `ms`, whichever comes first. */
  wait(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, ms));
    });
    return Promise.race([this.promise, timeout]).finally(() => clearTimeout(timer));
  }
}

/** Resolves with the promise, or with undefined after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
