import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, nuid, type NatsConnection } from '@nats-io/nats-core';
import { EventBusClosedError, EventBusError, EventBusUnavailableError } from '../errors.js';
import {
  backoffDelay,
  consumerFilter,
  deadLetterDedupeId,
  deadLetterHeaders,
  decide,
  partitionCount,
  Signal,
  within,
} from '../delivery.js';
import { withTraceContext } from '../trace.js';
import type { ConsumeOptions, ConsumerHandle, DeliveredEvent, EventHandler, PublishAck, PublishOptions } from '../types.js';
import { LeaseBucket } from './leases.js';
import { splitHeaders } from './messages.js';

export interface GroupContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Clients whose request timeout fits inside one lease renewal interval. */
  leaseJs: (timeoutMs: number) => JetStreamClient;
  leaseJsm: (timeoutMs: number) => Promise<JetStreamManager>;
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck>;
  pullExpiresMs: number;
  onClosed(group: NatsConsumerGroup): void;
}

interface Lease {
  revision: number;
  /** Local time until which the entry certainly still exists on the server (see README: leases). */
  validUntil: number;
}

const DEFAULT_LEASE_TTL_MS = 10_000;
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
const RETRY_AFTER_ERROR_MS = 250;

function toEvent(msg: JsMsg, partition: number): DeliveredEvent {
  const { headers, dedupeId } = splitHeaders(msg.headers);
  return {
    subject: msg.subject,
    data: msg.data,
    headers,
    dedupeId,
    sequence: msg.seq,
    deliveryCount: msg.info.deliveryCount,
    partition,
    publishedAt: msg.time,
  };
}

/** Fetches one partition, one event at a time, while its lease is certainly ours. */
class PartitionWorker {
  private stopping = false;
  readonly wake = new Signal();
  readonly done: Promise<void>;

  constructor(
    private readonly group: NatsConsumerGroup,
    readonly partition: number,
    public lease: Lease,
  ) {
    this.done = this.run();
  }

  stop(): void {
    this.stopping = true;
    this.wake.fire();
  }

  private async run(): Promise<void> {
    const { pullExpiresMs, safetyMs } = this.group;
    const consumer = this.group.consumerOf(this.partition);
    while (!this.stopping) {
      // A pull request outlives our decision to make it by up to pullExpiresMs: only pull when
      // the lease certainly outlasts it, so a delivery never reaches us after our lease ended.
      if (this.lease.validUntil - Date.now() < pullExpiresMs + safetyMs) {
        await this.wake.wait(100);
        continue;
      }
      if (this.group.disconnected) {
        await this.wake.wait(100);
        continue;
      }
      let msg: JsMsg | null;
      try {
        msg = await this.group.pullOne(consumer);
      } catch (error) {
        if (this.group.connectionClosed()) return;
        this.group.report(error);
        await this.wake.wait(RETRY_AFTER_ERROR_MS);
        continue;
      }
      if (msg === null) continue;
      if (this.stopping || this.lease.validUntil <= Date.now()) {
        // Not ours to handle any more: hand it back at once to whoever holds the partition now.
        msg.nak();
        continue;
      }
      await this.group.process(msg, this.partition);
    }
  }
}

/**
 * One replica of a consumer group: P durable pull consumers (`<durable>-p<i>`, max_ack_pending 1)
 * shared among replicas through leases in a KV bucket; see README.
 */
export class NatsConsumerGroup implements ConsumerHandle {
  readonly durable: string;
  readonly memberId = nuid.next();
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  readonly safetyMs: number;
  readonly pullExpiresMs: number;
  private readonly drainTimeoutMs: number;
  private bucket!: LeaseBucket;
  private consumers: Consumer[] = [];
  private readonly workers = new Map<number, PartitionWorker>();
  /** Workers stopped (lease lost or released) whose in-flight event may still be running. */
  private readonly retiring = new Set<Promise<void>>();
  private readonly failures = new Map<number, string>();
  private readonly tickSignal = new Signal();
  private tickLoop: Promise<void> = Promise.resolve();
  private closing = false;
  private closed: Promise<void> | undefined;
  /** Pulls in flight; stopped on a disconnect (see pullOne). */
  private readonly pulls = new Set<ConsumerMessages>();
  private statusIterator: { stop?: () => void } | undefined;
  disconnected = false;

  constructor(
    private readonly ctx: GroupContext,
    private readonly options: ConsumeOptions,
    private readonly handler: EventHandler,
  ) {
    this.durable = options.durable;
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.renewIntervalMs = Math.floor(this.leaseTtlMs / 4);
    this.safetyMs = Math.max(100, Math.floor(this.leaseTtlMs / 20));
    this.pullExpiresMs = ctx.pullExpiresMs;
    this.drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    const needed = this.pullExpiresMs + this.renewIntervalMs + this.safetyMs;
    if (this.leaseTtlMs < needed) {
      throw new RangeError(
        `leaseTtlMs ${this.leaseTtlMs} is too short: a pull lasts ${this.pullExpiresMs} ms, so the lease must be at least ${needed} ms (pull + ttl/4 renewal + safety margin)`,
      );
    }
  }

  async start(): Promise<void> {
    const { stream, durable } = this.options;
    const partitions = partitionCount(this.options);
    const apiTimeout = this.renewIntervalMs;
    this.bucket = new LeaseBucket(
      this.ctx.leaseJs(apiTimeout),
      await this.ctx.leaseJsm(apiTimeout),
      `aimass_leases_${durable}`,
      this.leaseTtlMs,
    );
    await this.bucket.ensure();
    const infos: ConsumerInfo[] = [];
    for (let p = 0; p < partitions; p++) infos.push(await this.ensureConsumer(stream, `${durable}-p${p}`, p));
    this.consumers = infos.map((info) => this.ctx.js.consumers.getConsumerFromInfo(info));
    void this.watchConnection();
    // A lone replica starts consuming right away instead of one interval later.
    await this.tick();
    this.tickLoop = this.runTicks();
  }

  assignedPartitions(): number[] {
    return [...this.workers.keys()].sort((a, b) => a - b);
  }

  async pending(): Promise<number> {
    const { stream } = this.options;
    const names = Array.from({ length: partitionCount(this.options) }, (_, p) => `${this.durable}-p${p}`);
    try {
      const infos = await Promise.all(names.map((name) => this.ctx.jsm.consumers.info(stream, name)));
      return infos.reduce((sum, info) => sum + info.num_pending + info.num_ack_pending, 0);
    } catch (error) {
      if (this.connectionClosed()) throw new EventBusClosedError(undefined, { cause: error });
      if (error instanceof JetStreamApiError && error.status !== 503) {
        throw new EventBusError(`pending of ${this.durable}: ${error.message}`, { cause: error });
      }
      throw new EventBusUnavailableError(`pending of ${this.durable}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /**
   * One event, or null when the pull expired or was cut short by a disconnect. Like
   * `consumer.next()`, except that the pull can be stopped: the client re-issues an unfinished
   * pull when it reconnects (and flushes one made while disconnected), which may be long after
   * the lease that allowed it ran out. Such a pull takes the next event for a worker that can
   * only nak it, and the nak counts as a delivery: with maxDeliver 1 the event was dead-lettered
   * without reaching the handler.
   */
  async pullOne(consumer: Consumer): Promise<JsMsg | null> {
    const messages = await consumer.fetch({ max_messages: 1, expires: this.pullExpiresMs });
    if (this.disconnected) {
      messages.stop();
      return null;
    }
    this.pulls.add(messages);
    try {
      for await (const msg of messages) return msg;
      return null;
    } finally {
      this.pulls.delete(messages);
    }
  }

  private async watchConnection(): Promise<void> {
    const status = this.ctx.nc.status();
    this.statusIterator = status as { stop?: () => void };
    try {
      for await (const event of status) {
        if (event.type === 'disconnect') {
          this.disconnected = true;
          for (const pull of [...this.pulls]) pull.stop();
          this.pulls.clear();
        } else if (event.type === 'reconnect') {
          this.disconnected = false;
          for (const worker of this.workers.values()) worker.wake.fire();
        }
      }
    } catch {
      // The status stream ends with the connection; nothing to watch then.
    }
  }

  consumerOf(partition: number): Consumer {
    const consumer = this.consumers[partition];
    if (!consumer) throw new EventBusError(`no consumer for partition ${partition}`);
    return consumer;
  }

  connectionClosed(): boolean {
    return this.ctx.nc.isClosed();
  }

  report(error: unknown, event?: DeliveredEvent): void {
    try {
      this.options.onError?.(error, event);
    } catch {
      // An observer must not break the consumer.
    }
  }

  private async ensureConsumer(stream: string, name: string, partition: number): Promise<ConsumerInfo> {
    const wanted: Partial<ConsumerConfig> = {
      durable_name: name,
      filter_subject: consumerFilter(this.options, partition),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      replay_policy: ReplayPolicy.Instant,
      // One unacknowledged event per partition: the next is not delivered until this one is
      // acked or terminated, and a nak'd one comes back before anything after it.
      max_ack_pending: 1,
      ack_wait: nanos(this.options.ackWaitMs),
      // Unlimited on the server: maxDeliver is applied here so exhausted events reach the
      // dead-letter subject instead of silently stopping at the server's limit.
      max_deliver: -1,
    };
    let current: ConsumerInfo | undefined;
    try {
      current = await this.ctx.jsm.consumers.info(stream, name);
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound)) throw error;
    }
    if (current === undefined) return this.ctx.jsm.consumers.add(stream, wanted);
    const c = current.config;
    if (c.filter_subject !== wanted.filter_subject) {
      throw new EventBusError(
        `consumer ${name} filters ${c.filter_subject}, not ${wanted.filter_subject}: delete it to change the subject layout`,
      );
    }
    if (c.ack_wait !== wanted.ack_wait || c.max_ack_pending !== 1 || c.max_deliver !== -1) {
      return this.ctx.jsm.consumers.update(stream, name, {
        ack_wait: wanted.ack_wait,
        max_ack_pending: 1,
        max_deliver: -1,
      });
    }
    return current;
  }

  async process(msg: JsMsg, partition: number): Promise<void> {
    const event = toEvent(msg, partition);
    const { options } = this;
    // A handler still working is not a lost delivery: tell the server so (+WPI) well within
    // ackWait, or it would redeliver, count an attempt, and after maxDeliver of those dead-letter an
    // event whose handler was merely slow (a store outage waited out, a long refit).
    const heartbeat = setInterval(() => msg.working(), Math.max(50, Math.floor(options.ackWaitMs / 3)));
    let decision: Awaited<ReturnType<typeof decide>>;
    try {
      decision = await withTraceContext(event.headers, () => decide(this.handler, event, options, this.failures.get(event.sequence)));
    } finally {
      clearInterval(heartbeat);
    }
    if (decision.action === 'ack') {
      this.failures.delete(event.sequence);
      msg.ack();
      return;
    }
    if (decision.error !== undefined) this.report(decision.error, event);
    if (decision.action === 'retry') {
      msg.nak(decision.delayMs);
      return;
    }
    try {
      await withTraceContext(event.headers, () =>
        this.ctx.publish(options.deadLetterSubject, event.data, {
          dedupeId: deadLetterDedupeId(options.stream, options.durable, event.sequence),
          headers: deadLetterHeaders(event, options.stream, options.durable, decision.reason, decision.attempts),
        }),
      );
      this.failures.delete(event.sequence);
      msg.term();
    } catch (error) {
      // Keep the event (and its place in the partition) until the dead letter is stored.
      this.failures.set(event.sequence, decision.reason);
      this.report(error, event);
      msg.nak(backoffDelay(event.deliveryCount, options.backoffMs));
    }
  }

  private async runTicks(): Promise<void> {
    while (!this.closing) {
      await this.tickSignal.wait(this.renewIntervalMs);
      if (this.closing) return;
      if (this.connectionClosed()) {
        this.abandon();
        return;
      }
      await this.tick();
    }
  }

  private leaseValue() {
    return { member: this.memberId, at: new Date().toISOString() };
  }

  /** Heartbeat, renew, then balance: each live member holds about partitions / members. */
  private async tick(): Promise<void> {
    try {
      await this.bucket.put(`m.${this.memberId}`, this.leaseValue());
    } catch (error) {
      this.report(error);
    }
    await Promise.all([...this.workers.values()].map((worker) => this.renew(worker)));
    if (this.closing) return;

    let keys: string[];
    try {
      keys = await this.bucket.keys();
    } catch (error) {
      this.report(error);
      return;
    }
    const members = new Set([this.memberId]);
    const held = new Set<number>();
    for (const key of keys) {
      if (key.startsWith('m.')) members.add(key.slice(2));
      else if (key.startsWith('p.')) held.add(Number(key.slice(2)));
    }
    const partitions = partitionCount(this.options);
    const ids = [...members].sort();
    const me = ids.indexOf(this.memberId);
    const target = Math.floor(partitions / ids.length) + (me < partitions % ids.length ? 1 : 0);
    const mine = this.assignedPartitions();

    if (mine.length > target) {
      for (const partition of mine.slice(target)) this.release(partition);
      return;
    }
    // Start the search at a different place for each member so they rarely race for the same key.
    const offset = Math.floor((me * partitions) / ids.length);
    for (let i = 0; i < partitions && this.workers.size < target && !this.closing; i++) {
      const partition = (offset + i) % partitions;
      if (held.has(partition) || this.workers.has(partition)) continue;
      const sentAt = Date.now();
      let revision: number | undefined;
      try {
        revision = await this.bucket.create(`p.${partition}`, this.leaseValue());
      } catch (error) {
        this.report(error);
        return;
      }
      if (revision === undefined || this.closing) continue;
      const lease = { revision, validUntil: sentAt + this.leaseTtlMs - this.safetyMs };
      this.workers.set(partition, new PartitionWorker(this, partition, lease));
    }
  }

  private async renew(worker: PartitionWorker): Promise<void> {
    const sentAt = Date.now();
    let revision: number | undefined;
    try {
      revision = await this.bucket.update(`p.${worker.partition}`, this.leaseValue(), worker.lease.revision);
    } catch (error) {
      // Unknown outcome: keep going until validUntil, after which the worker stops pulling.
      this.report(error);
      return;
    }
    if (revision === undefined) {
      this.report(new EventBusError(`lease on partition ${worker.partition} of ${this.durable} was lost`));
      this.retire(worker);
      return;
    }
    worker.lease = { revision, validUntil: sentAt + this.leaseTtlMs - this.safetyMs };
    worker.wake.fire();
  }

  private retire(worker: PartitionWorker): Promise<void> {
    if (this.workers.get(worker.partition) === worker) this.workers.delete(worker.partition);
    worker.stop();
    const done = worker.done.finally(() => this.retiring.delete(done));
    this.retiring.add(done);
    return done;
  }

  /** Hands a partition back: stop pulling, let the in-flight event finish, then free the key. */
  private release(partition: number): void {
    const worker = this.workers.get(partition);
    if (!worker) return;
    void this.retire(worker).then(() => this.freeLease(worker));
  }

  private async freeLease(worker: PartitionWorker): Promise<void> {
    // Purge is not conditional: only do it while the entry is certainly still ours.
    if (worker.lease.validUntil - Date.now() <= this.safetyMs || this.connectionClosed()) return;
    try {
      await this.bucket.purge(`p.${worker.partition}`);
    } catch (error) {
      this.report(error);
    }
  }

  /** The connection is gone (crash-like): stop without touching the server; leases expire. */
  abandon(): void {
    this.closing = true;
    this.statusIterator?.stop?.();
    this.tickSignal.fire();
    for (const worker of [...this.workers.values()]) this.retire(worker);
  }

  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    this.tickSignal.fire();
    await this.tickLoop;
    const workers = [...this.workers.values()];
    const stopped = workers.map((worker) => this.retire(worker));
    await within(Promise.all([...stopped, ...this.retiring]), this.drainTimeoutMs);
    this.statusIterator?.stop?.();
    if (!this.connectionClosed()) {
      await Promise.all(workers.map((worker) => this.freeLease(worker)));
      try {
        await this.bucket.purge(`m.${this.memberId}`);
      } catch (error) {
        this.report(error);
      }
    }
    this.ctx.onClosed(this);
  }
}
