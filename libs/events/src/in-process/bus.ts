import { EventBusClosedError, EventBusError } from '../errors.js';
import {
  backoffDelay,
  deadLetterDedupeId,
  deadLetterHeaders,
  decide,
  validateConsumeOptions,
  within,
} from '../delivery.js';
import { assertSubscribeSubject, LiveSubscription } from '../live.js';
import { assertExactSubject, assertName } from '../subjects.js';
import { injectTraceContext, withTraceContext } from '../trace.js';
import type {
  ConsumeOptions,
  ConsumerHandle,
  DeliveredEvent,
  EnsureStreamResult,
  EventBus,
  EventHandler,
  LiveHandler,
  PublishAck,
  PublishOptions,
  PurgeResult,
  StreamSpec,
  SubscribeOptions,
  Subscription,
} from '../types.js';
import {
  InProcessBroker,
  type DeliveryOutcome,
  type GroupMember,
  type InProcessBrokerOptions,
  type MemoryGroup,
} from './broker.js';

export interface InProcessBusOptions extends InProcessBrokerOptions {
  /** Share one broker between several bus handles (e.g. one per service in the one-process mode). */
  broker?: InProcessBroker;
}

/**
 * The in-memory adapter of the event bus, for the one-process mode and tests. With a
 * `journalPath` (and no `broker`), acknowledged events and consumer positions survive a restart.
 */
export function createInProcessBus(options: InProcessBusOptions = {}): InProcessEventBus {
  return new InProcessEventBus(
    options.broker ?? new InProcessBroker({ journalPath: options.journalPath, fsync: options.fsync }),
  );
}

const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

class InProcessConsumer implements ConsumerHandle, GroupMember {
  readonly durable: string;
  closing = false;
  private readonly inflight = new Set<Promise<DeliveryOutcome>>();
  private readonly failures = new Map<number, string>();
  private closed: Promise<void> | undefined;

  constructor(
    private readonly bus: InProcessEventBus,
    private readonly group: MemoryGroup,
    private readonly options: ConsumeOptions,
    private readonly handler: EventHandler,
  ) {
    this.durable = options.durable;
  }

  assignedPartitions(): number[] {
    return this.closing ? [] : this.group.ownedBy(this);
  }

  async pending(): Promise<number> {
    return this.group.pending();
  }

  deliver(event: DeliveredEvent): Promise<DeliveryOutcome> {
    const running = this.run(event);
    this.inflight.add(running);
    void running.finally(() => this.inflight.delete(running));
    return running;
  }

  private report(error: unknown, event?: DeliveredEvent): void {
    try {
      this.options.onError?.(error, event);
    } catch {
      // An observer must not break the consumer.
    }
  }

  private async run(event: DeliveredEvent): Promise<DeliveryOutcome> {
    const { options } = this;
    const decision = await withTraceContext(event.headers, () =>
      decide(this.handler, event, options, this.failures.get(event.sequence)),
    );
    if (decision.action === 'ack') {
      this.failures.delete(event.sequence);
      return { settle: 'done' };
    }
    if (decision.error !== undefined) this.report(decision.error, event);
    if (decision.action === 'retry') return { settle: 'retry', delayMs: decision.delayMs };
    try {
      await withTraceContext(event.headers, () =>
        this.bus.send(options.deadLetterSubject, event.data, {
          dedupeId: deadLetterDedupeId(options.stream, options.durable, event.sequence),
          headers: deadLetterHeaders(event, options.stream, options.durable, decision.reason, decision.attempts),
        }),
      );
      this.failures.delete(event.sequence);
      return { settle: 'done' };
    } catch (error) {
      this.failures.set(event.sequence, decision.reason);
      this.report(error, event);
      return { settle: 'retry', delayMs: backoffDelay(event.deliveryCount, options.backoffMs) };
    }
  }

  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    this.group.leave(this);
    await within(Promise.allSettled([...this.inflight]), this.options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    this.bus.forget(this);
  }
}

/**
 * Same contract as the NATS adapter, in one process. What it does not give: replicas in other
 * processes, ackWait redelivery (a handler that never settles keeps its partition), survival of
 * a restart without a journal.
 */
export class InProcessEventBus implements EventBus {
  private readonly consumers = new Set<InProcessConsumer>();
  private readonly subscriptions = new Set<LiveSubscription>();
  private closing: Promise<void> | undefined;

  constructor(readonly broker: InProcessBroker) {}

  private assertOpen(): void {
    if (this.closing !== undefined) throw new EventBusClosedError();
  }

  async ensureStream(spec: StreamSpec): Promise<EnsureStreamResult> {
    this.assertOpen();
    assertName(spec.name, 'stream name');
    if (spec.subjects.length === 0) throw new EventBusError(`stream ${spec.name} needs at least one subject`);
    return this.broker.ensureStream(spec);
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck> {
    this.assertOpen();
    return this.send(subject, data, options);
  }

  /** Publish without the open check: dead letters are still sent while consumers drain. */
  async send(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck> {
    if (!options.dedupeId) throw new EventBusError('publish needs a dedupeId');
    const headers: Record<string, string> = { ...options.headers };
    injectTraceContext(headers);
    return this.broker.publish(subject, data, headers, options.dedupeId);
  }

  async consume(options: ConsumeOptions, handler: EventHandler): Promise<ConsumerHandle> {
    this.assertOpen();
    validateConsumeOptions(options);
    const group = this.broker.group(options.stream, options.durable, options.filterSubject, options.partitions);
    const consumer = new InProcessConsumer(this, group, options, handler);
    this.consumers.add(consumer);
    group.join(consumer);
    return consumer;
  }

  /** In one process nothing can be missed, so onGap is never called. */
  async subscribe(subject: string, handler: LiveHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.assertOpen();
    assertSubscribeSubject(subject);
    const live: LiveSubscription = new LiveSubscription(subject, handler, options, () => {
      unlisten();
      this.subscriptions.delete(live);
    });
    const unlisten = this.broker.listen({ filter: subject, deliver: (event) => live.deliver(event) });
    this.subscriptions.add(live);
    return live;
  }

  /** Removes the subject's events from memory and, with a journal, from the file (see InProcessBroker.purge). */
  async purge(stream: string, subject: string): Promise<PurgeResult> {
    this.assertOpen();
    assertName(stream, 'stream name');
    assertExactSubject(subject, 'purge');
    return { purged: this.broker.purge(stream, subject) };
  }

  async purgeMatching(stream: string, filter: string): Promise<PurgeResult> {
    this.assertOpen();
    assertName(stream, 'stream name');
    assertSubscribeSubject(filter);
    let purged = 0;
    for (const subject of this.broker.subjectsOf(stream, filter)) purged += this.broker.purge(stream, subject);
    return { purged };
  }

  forget(consumer: InProcessConsumer): void {
    this.consumers.delete(consumer);
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([...[...this.subscriptions].map((s) => s.close()), ...[...this.consumers].map((c) => c.close())]).then(() => undefined);
    return this.closing;
  }
}
