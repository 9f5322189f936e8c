export type EventHeaders = Readonly<Record<string, string>>;

/** A stream declared up front; `ensureStream` creates it or brings its configuration up to date. */
export interface StreamSpec {
  name: string;
  subjects: string[];
  /** Events older than this are removed. */
  maxAgeMs: number;
  /** A publish repeating a dedupeId seen within this window is not stored again. */
  duplicateWindowMs: number;
  /** Oldest events are discarded beyond this size; unlimited when omitted. */
  maxBytes?: number;
  /** Copies kept by a clustered JetStream; 1 when omitted. Ignored in-process. */
  replicas?: number;
}

export type EnsureStreamResult = 'created' | 'updated' | 'unchanged';

export interface PublishOptions {
  /** Idempotency key: a repeat inside the stream's duplicate window is acknowledged but not stored twice. */
  dedupeId: string;
  headers?: Record<string, string>;
}

export interface PublishAck {
  stream: string;
  /** Stream sequence of the stored event (of the original one for a duplicate). */
  sequence: number;
  duplicate: boolean;
}

/** What `purge` removed. */
export interface PurgeResult {
  /** Stored events removed (0 when the subject held none). */
  purged: number;
}

export interface DeliveredEvent {
  subject: string;
  data: Uint8Array;
  /** The publisher's headers (including `traceparent`), without the transport's own (`Nats-*`). */
  headers: EventHeaders;
  dedupeId: string | undefined;
  /** Stream sequence. */
  sequence: number;
  /** 1 on the first delivery; counted by the server, so it survives consumer crashes. */
  deliveryCount: number;
  partition: number;
  /** When the stream stored the event. */
  publishedAt: Date;
}

/** Resolving acknowledges the event; throwing asks for a redelivery after a back-off. */
export type EventHandler = (event: DeliveredEvent) => Promise<void>;

export interface ConsumeOptions {
  /** Consumer group name; replicas using the same one share the partitions. [A-Za-z0-9_-]. */
  durable: string;
  stream: string;
  /**
   * With `partitions`: the keyed subject prefix the publisher passed to `keyedSubject`
   * (wildcards allowed, e.g. `aimass.*.feedback`); partition i consumes `<filterSubject>.<i>.>`.
   * Without: a plain subject filter consumed as one ordered partition (e.g. a dead-letter stream).
   */
  filterSubject: string;
  /** Must equal the count publishers pass to `keyedSubject`. Omitted: one unkeyed partition. */
  partitions?: number;
  /** Failed attempts after which the event goes to the dead-letter subject. */
  maxDeliver: number;
  /** Delay before redelivery after the n-th failed attempt: backoffMs[n-1], the last entry repeating. */
  backoffMs: readonly number[];
  /** Time a delivery may stay unacknowledged before the server redelivers it. */
  ackWaitMs: number;
  /** Where exhausted events go; a stream must capture it. */
  deadLetterSubject: string;
  /** Partition lease time-to-live (NATS). Default 10 s. */
  leaseTtlMs?: number;
  /** Bound on waiting for in-flight handlers in close(). Default 10 s. */
  drainTimeoutMs?: number;
  /** Told about failures the consumer handles itself (handler errors, transport errors, dead-letter failures). */
  onError?: (error: unknown, event?: DeliveredEvent) => void;
}

export interface ConsumerHandle {
  readonly durable: string;
  /** Partitions this replica currently processes, ascending. */
  assignedPartitions(): number[];
  /**
   * Events of the group (all its partitions, whichever replica holds them) not acknowledged yet:
   * not delivered, or delivered and awaiting their ack. The group's lag, for a metric.
   */
  pending(): Promise<number>;
  /** Stops fetching, waits (bounded) for in-flight handlers, gives the partitions back. */
  close(): Promise<void>;
}

/**
 * A live event seen by `subscribe`. Same shape as a consumed event; what a plain subscription
 * cannot know is 0 (`sequence`; `partition` is always 0) or the time of receipt (`publishedAt`
 * on NATS), and `deliveryCount` is always 1.
 */
export type LiveEvent = DeliveredEvent;

/** Called with each live event, one at a time in arrival order; a rejection is reported, never retried. */
export type LiveHandler = (event: LiveEvent) => void | Promise<void>;

export interface SubscribeOptions {
  /**
   * Events may have been missed (NATS: the connection was lost and is back). Whoever derives
   * state from the events (a cache) should drop it. Never called by the in-process adapter.
   */
  onGap?: () => void;
  /** Told about handler failures (and NATS subscription errors); the subscription goes on. */
  onError?: (error: unknown, event?: LiveEvent) => void;
  /** Bound on waiting for queued handlers in close(). Default 10 s. */
  drainTimeoutMs?: number;
}

export interface Subscription {
  readonly subject: string;
  /** Stops receiving and waits (bounded) for the handlers already queued. */
  close(): Promise<void>;
}

/**
 * The event bus port: durable, at-least-once, ordered per partition. Adapters: NATS JetStream
 * (`connectNatsBus`) and in-process (`createInProcessBus`).
 */
export interface EventBus {
  ensureStream(spec: StreamSpec): Promise<EnsureStreamResult>;
  /** Resolves once the event is durably stored; rejects with EventBusUnavailableError within a bounded time. */
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck>;
  consume(options: ConsumeOptions, handler: EventHandler): Promise<ConsumerHandle>;
  /**
   * Live fan-out, at most once: every subscription (every replica) receives every event published
   * from now on whose subject matches `subject` (wildcards allowed), nothing from before, and
   * nothing while disconnected (then `onGap` is called). No acks, no redelivery, no load sharing:
   * for cache invalidation, not for work. A publish repeated with the same dedupeId may be seen
   * again (a subscription sees publishes, the stream stores events once).
   */
  subscribe(subject: string, handler: LiveHandler, options?: SubscribeOptions): Promise<Subscription>;
  /**
   * Removes every event the stream stores on `subject` (one exact subject, no wildcards), for an
   * erasure: the bytes are erased, not only hidden. Consumers that have not reached a removed
   * event never get it; the other subjects and every consumer's position are untouched. Events
   * published on the subject afterwards are stored as usual. Idempotent: a repeat finds 0.
   * Rejects with RangeError for a wildcard or malformed subject, EventBusError for an unknown
   * stream or a subject it does not capture, EventBusUnavailableError when the store cannot be
   * reached (some events may be gone already: purge again).
   */
  purge(stream: string, subject: string): Promise<PurgeResult>;
  /**
   * `purge` for every subject the stream holds events on that `filter` matches (wildcards
   * allowed, e.g. `aimass.acme.feedback.>` for a tenant's deletion): each subject's events are
   * erased one by one as `purge` does, so other subjects and consumers' positions are untouched
   * (no filtered STREAM.PURGE, see the NATS bus). The subjects are those stored when asked.
   */
  purgeMatching(stream: string, filter: string): Promise<PurgeResult>;
  /** Closes every consumer and subscription (draining) and the connection. */
  close(): Promise<void>;
}
