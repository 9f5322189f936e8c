import { EventBusError, EventBusUnavailableError } from '../errors.js';
import { partitionFilter, subjectMatches } from '../subjects.js';
import type { DeliveredEvent, EnsureStreamResult, PublishAck, StreamSpec } from '../types.js';
import { Journal, type JournalRecord } from './journal.js';

interface StoredEvent {
  sequence: number;
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  dedupeId: string;
  storedAt: number;
  size: number;
  /** Set when `purge` removed it: a partition holding it in flight lets it go. */
  purged?: boolean;
}

class MemoryStream {
  readonly events: StoredEvent[] = [];
  lastSequence = 0;
  private bytes = 0;
  /** Insertion order is publish order, so expired entries are always at the front. */
  private readonly seen = new Map<string, { sequence: number; at: number }>();

  constructor(public spec: StreamSpec) {}

  captures(subject: string): boolean {
    return this.spec.subjects.some((pattern) => subjectMatches(pattern, subject));
  }

  duplicateOf(dedupeId: string): number | undefined {
    return this.seen.get(dedupeId)?.sequence;
  }

  append(event: StoredEvent): void {
    this.lastSequence = Math.max(this.lastSequence, event.sequence);
    this.events.push(event);
    this.bytes += event.size;
    this.seen.set(event.dedupeId, { sequence: event.sequence, at: event.storedAt });
    const maxBytes = this.spec.maxBytes ?? -1;
    while (maxBytes >= 0 && this.bytes > maxBytes && this.events.length > 0) this.dropOldest();
  }

  expire(now: number): void {
    while (this.events.length > 0 && now - (this.events[0]?.storedAt ?? now) > this.spec.maxAgeMs) this.dropOldest();
    for (const [id, entry] of this.seen) {
      if (now - entry.at < this.spec.duplicateWindowMs) break;
      this.seen.delete(id);
    }
  }

  /** The stored events on `subject`, in order. */
  storedOn(subject: string): StoredEvent[] {
    return this.events.filter((event) => event.subject === subject);
  }

  /** Removes the given events (found by `storedOn`, nothing yielded in between). */
  remove(removed: StoredEvent[]): void {
    const gone = new Set(removed);
    let kept = 0;
    for (const event of this.events) {
      if (gone.has(event)) {
        this.bytes -= event.size;
        event.purged = true;
      } else {
        this.events[kept++] = event;
      }
    }
    this.events.length = kept;
  }

  private dropOldest(): void {
    const dropped = this.events.shift();
    if (dropped) this.bytes -= dropped.size;
  }

  /** Index of the first stored event after `cursor`. */
  private firstAfter(cursor: number): number {
    const events = this.events;
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((events[mid]?.sequence ?? 0) <= cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First stored event after `cursor` whose subject matches `filter`. */
  nextAfter(cursor: number, filter: string, now: number): StoredEvent | undefined {
    this.expire(now);
    const events = this.events;
    for (let i = this.firstAfter(cursor); i < events.length; i++) {
      const event = events[i];
      if (event && subjectMatches(filter, event.subject)) return event;
    }
    return undefined;
  }

  /** Stored events after `cursor` whose subject matches `filter`. */
  countAfter(cursor: number, filter: string, now: number): number {
    this.expire(now);
    let count = 0;
    for (let i = this.firstAfter(cursor); i < this.events.length; i++) {
      if (subjectMatches(filter, this.events[i]!.subject)) count++;
    }
    return count;
  }
}

function eventSize(subject: string, data: Uint8Array, headers: Record<string, string>): number {
  return data.byteLength + subject.length + JSON.stringify(headers).length;
}

export type DeliveryOutcome = { settle: 'done' } | { settle: 'retry'; delayMs: number };

/** A replica of a consumer group: the in-process bus's consumer handle implements it. */
export interface GroupMember {
  readonly closing: boolean;
  deliver(event: DeliveredEvent): Promise<DeliveryOutcome>;
}

interface Partition {
  index: number;
  filter: string;
  /** Sequence of the last event acknowledged or terminated. */
  cursor: number;
  /** The one unacknowledged event (max_ack_pending = 1), with its delivery count. */
  inflight: { event: StoredEvent; deliveries: number; availableAt: number } | undefined;
  running: Promise<void> | undefined;
  owner: GroupMember | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** A durable consumer group's state; it outlives its members, like a JetStream durable. */
class MemoryGroup {
  readonly partitions: Partition[];
  private members: GroupMember[] = [];

  constructor(
    private readonly stream: () => MemoryStream | undefined,
    readonly filterSubject: string,
    readonly keyed: boolean,
    partitions: number,
    private readonly onSettled: (partition: number, sequence: number) => void,
  ) {
    this.partitions = Array.from({ length: partitions }, (_, index) => ({
      index,
      filter: keyed ? partitionFilter(filterSubject, index) : filterSubject,
      cursor: 0,
      inflight: undefined,
      running: undefined,
      owner: undefined,
      timer: undefined,
    }));
  }

  join(member: GroupMember): void {
    this.members.push(member);
    this.rebalance();
  }

  leave(member: GroupMember): void {
    this.members = this.members.filter((m) => m !== member);
    this.rebalance();
  }

  /** Round-robin over live members; a busy partition changes hands after its in-flight event. */
  private rebalance(): void {
    const n = this.members.length;
    for (const partition of this.partitions) {
      partition.owner = n === 0 ? undefined : this.members[partition.index % n];
      if (partition.owner === undefined && partition.timer !== undefined) {
        clearTimeout(partition.timer);
        partition.timer = undefined;
      }
      this.pump(partition);
    }
  }

  /** Events of every partition not acknowledged yet (including the one in flight). */
  pending(): number {
    const stream = this.stream();
    if (stream === undefined) return 0;
    const now = Date.now();
    return this.partitions.reduce((sum, p) => sum + stream.countAfter(p.cursor, p.filter, now), 0);
  }

  ownedBy(member: GroupMember): number[] {
    return this.partitions.filter((p) => p.owner === member).map((p) => p.index);
  }

  notify(): void {
    for (const partition of this.partitions) this.pump(partition);
  }

  private pump(partition: Partition): void {
    const owner = partition.owner;
    if (partition.running !== undefined || owner === undefined || owner.closing) return;
    const stream = this.stream();
    if (stream === undefined) return;
    if (partition.inflight?.event.purged) {
      // Purged while waiting for its redelivery: it is never delivered again, the partition moves on.
      if (partition.timer !== undefined) clearTimeout(partition.timer);
      partition.timer = undefined;
      partition.inflight = undefined;
    }
    const now = Date.now();
    if (partition.inflight === undefined) {
      const next = stream.nextAfter(partition.cursor, partition.filter, now);
      if (next === undefined) return;
      partition.inflight = { event: next, deliveries: 0, availableAt: now };
    }
    const inflight = partition.inflight;
    if (inflight.availableAt > now) {
      partition.timer ??= setTimeout(() => {
        partition.timer = undefined;
        this.pump(partition);
      }, inflight.availableAt - now);
      return;
    }
    inflight.deliveries += 1;
    const { event } = inflight;
    const delivered: DeliveredEvent = {
      subject: event.subject,
      data: event.data.slice(),
      headers: { ...event.headers },
      dedupeId: event.dedupeId,
      sequence: event.sequence,
      deliveryCount: inflight.deliveries,
      partition: partition.index,
      publishedAt: new Date(event.storedAt),
    };
    partition.running = owner
      .deliver(delivered)
      .then(
        (outcome) => {
          if (outcome.settle === 'done') {
            partition.cursor = event.sequence;
            partition.inflight = undefined;
            this.onSettled(partition.index, event.sequence);
          } else {
            inflight.availableAt = Date.now() + outcome.delayMs;
          }
        },
        () => {
          inflight.availableAt = Date.now();
        },
      )
      .finally(() => {
        partition.running = undefined;
        setImmediate(() => this.pump(partition));
      });
  }
}

/** A live subscription as the broker sees it. */
export interface LiveListener {
  readonly filter: string;
  deliver(event: DeliveredEvent): void;
}

export interface InProcessBrokerOptions {
  /**
   * Journal file: published events and consumer positions are appended to it before they are
   * acknowledged and replayed at start, so acknowledged events survive a process restart.
   */
  journalPath?: string;
  /** fsync every journal write: survive a machine crash too, at the cost of a disk flush per event. */
  fsync?: boolean;
}

/**
 * The in-memory broker behind one or more in-process buses: streams with a duplicate window,
 * retention by age and size, durable consumer groups that keep their position while no replica
 * is running, and an optional journal.
 */
export class InProcessBroker {
  private readonly streams = new Map<string, MemoryStream>();
  private readonly groups = new Map<string, MemoryGroup>();
  private readonly listeners = new Set<LiveListener>();
  /** Positions read from the journal, applied when their group is declared again. */
  private readonly savedCursors = new Map<string, number[]>();
  private readonly journal: Journal | undefined;
  private appendedSinceCompaction = 0;

  constructor(options: InProcessBrokerOptions = {}) {
    if (options.journalPath !== undefined) {
      this.journal = new Journal(options.journalPath, options.fsync ?? false);
      this.replay(this.journal.read());
      this.compact();
    }
  }

  ensureStream(spec: StreamSpec): EnsureStreamResult {
    const copy: StreamSpec = { ...spec, subjects: [...spec.subjects] };
    const current = this.streams.get(spec.name);
    let result: EnsureStreamResult;
    if (current === undefined) {
      this.streams.set(spec.name, new MemoryStream(copy));
      result = 'created';
    } else {
      const before = current.spec;
      const same =
        [...before.subjects].sort().join('\n') === [...copy.subjects].sort().join('\n') &&
        before.maxAgeMs === copy.maxAgeMs &&
        before.duplicateWindowMs === copy.duplicateWindowMs &&
        (before.maxBytes ?? -1) === (copy.maxBytes ?? -1) &&
        (before.replicas ?? 1) === (copy.replicas ?? 1);
      if (same) return 'unchanged';
      current.spec = copy;
      result = 'updated';
    }
    this.record({ k: 's', spec: copy });
    return result;
  }

  publish(subject: string, data: Uint8Array, headers: Record<string, string>, dedupeId: string): PublishAck {
    const stream = [...this.streams.values()].find((s) => s.captures(subject));
    if (stream === undefined) {
      throw new EventBusUnavailableError(`no stream captures subject ${subject}`);
    }
    const now = Date.now();
    stream.expire(now);
    const name = stream.spec.name;
    const original = stream.duplicateOf(dedupeId);
    if (original !== undefined) {
      // Like core NATS subscribers, live listeners see every publish, a repeated one too.
      this.fanOut({ sequence: original, subject, data, headers, dedupeId, storedAt: now, size: 0 });
      return { stream: name, sequence: original, duplicate: true };
    }

    const event: StoredEvent = {
      sequence: stream.lastSequence + 1,
      subject,
      data: data.slice(),
      headers,
      dedupeId,
      storedAt: now,
      size: eventSize(subject, data, headers),
    };
    if (this.journal !== undefined) {
      try {
        this.record(eventRecord(name, event));
      } catch (error) {
        throw new EventBusUnavailableError(`cannot write the event journal ${this.journal.path}`, { cause: error });
      }
    }
    stream.append(event);
    // After the publisher got its answer, as with a real server.
    queueMicrotask(() => {
      for (const [key, group] of this.groups) if (key.startsWith(`${name}/`)) group.notify();
    });
    this.fanOut(event);
    return { stream: name, sequence: event.sequence, duplicate: false };
  }

  /**
   * Removes the stream's events on `subject`. With a journal, the journal is rewritten without
   * them first (atomically, aside and renamed), and only then are they dropped from memory: a
   * failed rewrite leaves both as they were, so a retry finds them again instead of reporting 0
   * while the file still holds them. Synchronous from start to end, so no publish interleaves.
   */
  /** The distinct subjects the stream holds events on that `filter` matches. */
  subjectsOf(streamName: string, filter: string): string[] {
    const stream = this.streams.get(streamName);
    if (stream === undefined) throw new EventBusError(`stream ${streamName} does not exist`);
    return [...new Set(stream.events.map((event) => event.subject).filter((subject) => subjectMatches(filter, subject)))];
  }

  purge(streamName: string, subject: string): number {
    const stream = this.streams.get(streamName);
    if (stream === undefined) throw new EventBusError(`stream ${streamName} does not exist`);
    if (!stream.captures(subject)) {
      throw new EventBusError(`stream ${streamName} does not capture subject ${subject} (it captures ${stream.spec.subjects.join(', ')})`);
    }
    const removed = stream.storedOn(subject);
    if (removed.length === 0) return 0;
    if (this.journal !== undefined) {
      const skip = new Set(removed);
      try {
        this.compact((event) => skip.has(event));
      } catch (error) {
        throw new EventBusUnavailableError(`cannot rewrite the event journal ${this.journal.path} without the purged events`, { cause: error });
      }
    }
    stream.remove(removed);
    // A partition waiting to redeliver a purged event lets it go (see MemoryGroup.pump).
    queueMicrotask(() => {
      for (const [key, group] of this.groups) if (key.startsWith(`${streamName}/`)) group.notify();
    });
    return removed.length;
  }

  /** Delivers every later publish whose subject matches `listener.filter`; returns the unsubscribe. */
  listen(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private fanOut(event: StoredEvent): void {
    if (this.listeners.size === 0) return;
    const targets = [...this.listeners].filter((l) => subjectMatches(l.filter, event.subject));
    if (targets.length === 0) return;
    queueMicrotask(() => {
      for (const listener of targets) {
        listener.deliver({
          subject: event.subject,
          data: event.data.slice(),
          headers: { ...event.headers },
          dedupeId: event.dedupeId,
          sequence: event.sequence,
          deliveryCount: 1,
          partition: 0,
          publishedAt: new Date(event.storedAt),
        });
      }
    });
  }

  group(stream: string, durable: string, filterSubject: string, partitions: number | undefined): MemoryGroup {
    if (!this.streams.has(stream)) throw new EventBusError(`stream ${stream} does not exist`);
    const key = `${stream}/${durable}`;
    const keyed = partitions !== undefined;
    const count = partitions ?? 1;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = new MemoryGroup(() => this.streams.get(stream), filterSubject, keyed, count, (p, q) => {
        try {
          this.record({ k: 'a', s: stream, g: durable, p, q });
        } catch {
          // Not fatal: without the record the event is redelivered after a restart (at-least-once).
        }
      });
      const saved = this.savedCursors.get(key);
      if (saved !== undefined && saved.length === count) {
        group.partitions.forEach((partition, i) => (partition.cursor = saved[i] ?? 0));
      }
      this.groups.set(key, group);
    } else if (group.filterSubject !== filterSubject || group.keyed !== keyed || group.partitions.length !== count) {
      throw new EventBusError(
        `consumer group ${durable} exists with ${group.partitions.length} partitions of ${group.filterSubject}`,
      );
    }
    return group;
  }

  private record(record: JournalRecord): void {
    if (this.journal === undefined) return;
    this.journal.append(record);
    this.appendedSinceCompaction++;
    const live = [...this.streams.values()].reduce((n, s) => n + s.events.length, 0);
    if (this.appendedSinceCompaction > Math.max(10_000, 2 * live)) this.compact();
  }

  private replay(records: JournalRecord[]): void {
    for (const record of records) {
      if (record.k === 's') {
        const current = this.streams.get(record.spec.name);
        const stream = current ?? new MemoryStream(record.spec);
        stream.spec = record.spec;
        stream.lastSequence = Math.max(stream.lastSequence, record.last ?? 0);
        this.streams.set(record.spec.name, stream);
      } else if (record.k === 'e') {
        const data = Buffer.from(record.d, 'base64');
        this.streams.get(record.s)?.append({
          sequence: record.q,
          subject: record.j,
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
          headers: record.h,
          dedupeId: record.i,
          storedAt: record.t,
          size: eventSize(record.j, data, record.h),
        });
      } else {
        const key = `${record.s}/${record.g}`;
        const cursors = this.savedCursors.get(key) ?? [];
        cursors[record.p] = Math.max(cursors[record.p] ?? 0, record.q);
        this.savedCursors.set(key, cursors);
      }
    }
    for (const cursors of this.savedCursors.values()) {
      for (let i = 0; i < cursors.length; i++) cursors[i] ??= 0;
    }
  }

  /** Rewrites the journal as the live state only: streams, retained events (but `skip`), positions. */
  private compact(skip?: (event: StoredEvent) => boolean): void {
    if (this.journal === undefined) return;
    const now = Date.now();
    const records: JournalRecord[] = [];
    for (const stream of this.streams.values()) {
      stream.expire(now);
      records.push({ k: 's', spec: stream.spec, last: stream.lastSequence });
      for (const event of stream.events) if (!skip?.(event)) records.push(eventRecord(stream.spec.name, event));
    }
    const cursors = new Map(this.savedCursors);
    for (const [key, group] of this.groups) cursors.set(key, group.partitions.map((p) => p.cursor));
    for (const [key, positions] of cursors) {
      const [s = '', g = ''] = key.split('/');
      positions.forEach((q, p) => records.push({ k: 'a', s, g, p, q }));
    }
    this.journal.rewrite(records);
    this.appendedSinceCompaction = 0;
  }
}

function eventRecord(stream: string, event: StoredEvent): JournalRecord {
  return {
    k: 'e',
    s: stream,
    q: event.sequence,
    j: event.subject,
    d: Buffer.from(event.data).toString('base64'),
    h: event.headers,
    i: event.dedupeId,
    t: event.storedAt,
  };
}

export type { MemoryGroup };
