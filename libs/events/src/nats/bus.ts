import {
  jetstream,
  JetStreamApiError,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type MsgRequest,
} from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { connect, type NodeConnectionOptions } from '@nats-io/transport-node';
import { EventBusClosedError, EventBusError, EventBusUnavailableError } from '../errors.js';
import { sleep, validateConsumeOptions, within } from '../delivery.js';
import { assertExactSubject, assertName, subjectMatches } from '../subjects.js';
import { assertSubscribeSubject, LiveSubscription } from '../live.js';
import { injectTraceContext } from '../trace.js';
import type {
  ConsumeOptions,
  ConsumerHandle,
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
import { NatsConsumerGroup } from './group.js';
import { splitHeaders } from './messages.js';
import { ensureJetStream, eventStreamConfig } from './streams.js';

export interface NatsBusSettings {
  /** Time to wait for one PubAck. Default 2000. */
  publishTimeoutMs?: number;
  /** Further attempts (same Nats-Msg-Id, so never stored twice) after a timeout. Default 2. */
  publishRetries?: number;
  /** Pause between attempts. Default 100. */
  publishRetryDelayMs?: number;
  /** Timeout of JetStream management requests (streams, consumers). Default 5000. */
  apiTimeoutMs?: number;
  /**
   * Lifetime of one pull request (min 1000). Bounds how long close() and a partition hand-over
   * wait for an idle pull; the lease TTL must exceed it (see README). Default 2000.
   */
  pullExpiresMs?: number;
}

export interface NatsBusOptions extends NatsBusSettings {
  servers: string | string[];
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** Reconnect forever after losing the server (default true). */
  reconnect?: boolean;
  /** Pause between reconnect attempts. Default 1000. */
  reconnectTimeWaitMs?: number;
  /** Bound on the first connect. Default 5000. */
  connectTimeoutMs?: number;
  /** Anything else for the NATS client: TLS, credentials, ping interval... */
  connection?: Partial<NodeConnectionOptions>;
}

/** Connects to NATS (reconnecting forever) and returns the JetStream adapter of the event bus. */
export async function connectNatsBus(options: NatsBusOptions): Promise<NatsEventBus> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...options.connection,
      servers: options.servers,
      name: options.name,
      reconnect: options.reconnect ?? true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectTimeWaitMs ?? 1000,
      timeout: options.connectTimeoutMs ?? 5000,
    });
  } catch (error) {
    throw new EventBusUnavailableError(`cannot connect to NATS at ${String(options.servers)}: ${messageOf(error)}${tlsHint(error, options)}`, {
      cause: error,
    });
  }
  try {
    return await createNatsBus(nc, { ...options, ownsConnection: true });
  } catch (error) {
    await nc.close();
    throw error;
  }
}

/** The adapter over an existing connection; close() closes the connection only when it owns it. */
export async function createNatsBus(
  nc: NatsConnection,
  settings: NatsBusSettings & { ownsConnection?: boolean } = {},
): Promise<NatsEventBus> {
  const apiTimeoutMs = settings.apiTimeoutMs ?? 5000;
  const jsm = await jetstreamManager(nc, { timeout: apiTimeoutMs, checkAPI: false });
  return new NatsEventBus(nc, jsm, settings);
}

// Node's codes for a server certificate that does not verify (chain, name, dates).
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What a TLS failure means for the configuration: Node's and nats.js's messages do not say. */
function tlsHint(error: unknown, options: NatsBusOptions): string {
  const tls = options.connection?.tls;
  const code = (error as { code?: unknown }).code ?? ((error as { cause?: { code?: unknown } }).cause)?.code;
  if (typeof code === 'string' && TLS_VERIFY_CODES.has(code)) {
    const ca = tls && typeof tls === 'object' && tls.caFile ? `the CA in ${tls.caFile}` : "the system's CAs (set the TLS caFile)";
    return ` (TLS: the server's certificate does not verify against ${ca})`;
  }
  if (tls && error instanceof Error && error.name === 'TimeoutError') {
    // A server with `verify: true` ends the handshake on a missing or untrusted client
    // certificate in a way the client only sees as a timeout.
    return ' (with TLS: a server that requires client certificates does this to a connection without one it trusts; check the TLS certFile and keyFile)';
  }
  return '';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class NatsEventBus implements EventBus {
  readonly publishTimeoutMs: number;
  readonly publishRetries: number;
  readonly publishRetryDelayMs: number;
  /** The longest a publish can take before it resolves or rejects. */
  readonly publishBoundMs: number;
  private readonly js: JetStreamClient;
  private readonly apiJs: JetStreamClient;
  private readonly pullExpiresMs: number;
  private readonly groups = new Set<NatsConsumerGroup>();
  private readonly subscriptions = new Set<LiveSubscription>();
  private readonly apiTimeoutMs: number;
  private readonly ownsConnection: boolean;
  private closing: Promise<void> | undefined;

  constructor(
    readonly connection: NatsConnection,
    private readonly jsm: JetStreamManager,
    settings: NatsBusSettings & { ownsConnection?: boolean },
  ) {
    this.publishTimeoutMs = settings.publishTimeoutMs ?? 2000;
    this.publishRetries = settings.publishRetries ?? 2;
    this.publishRetryDelayMs = settings.publishRetryDelayMs ?? 100;
    this.publishBoundMs =
      (this.publishRetries + 1) * this.publishTimeoutMs + this.publishRetries * this.publishRetryDelayMs;
    this.pullExpiresMs = Math.max(1000, settings.pullExpiresMs ?? 2000);
    this.ownsConnection = settings.ownsConnection ?? false;
    this.apiTimeoutMs = settings.apiTimeoutMs ?? 5000;
    this.js = jetstream(connection, { timeout: this.publishTimeoutMs });
    this.apiJs = jetstream(connection, { timeout: this.apiTimeoutMs });
    void this.watchReconnects();
    // Closed under us (crash-like): consumers stop without releasing; their leases expire.
    void connection.closed().then(() => {
      for (const group of this.groups) group.abandon();
    });
  }

  private assertOpen(): void {
    if (this.closing !== undefined || this.connection.isClosed()) throw new EventBusClosedError();
  }

  async ensureStream(spec: StreamSpec): Promise<EnsureStreamResult> {
    this.assertOpen();
    assertName(spec.name, 'stream name');
    try {
      return await ensureJetStream(this.jsm, eventStreamConfig(spec));
    } catch (error) {
      throw this.translate(error, `ensureStream ${spec.name}`);
    }
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck> {
    this.assertOpen();
    return this.send(subject, data, options);
  }

  /** Publish without the open check: dead letters are still sent while consumers drain. */
  private async send(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck> {
    if (!options.dedupeId) throw new EventBusError('publish needs a dedupeId');
    const carrier: Record<string, string> = { ...options.headers };
    injectTraceContext(carrier);
    const headers = natsHeaders();
    for (const [key, value] of Object.entries(carrier)) headers.set(key, value);

    let lastError: unknown;
    for (let attempt = 0; attempt <= this.publishRetries; attempt++) {
      if (attempt > 0) await sleep(this.publishRetryDelayMs);
      try {
        const ack = await this.js.publish(subject, data, {
          msgID: options.dedupeId,
          headers,
          timeout: this.publishTimeoutMs,
        });
        return { stream: ack.stream, sequence: ack.seq, duplicate: ack.duplicate };
      } catch (error) {
        if (this.connection.isClosed()) throw new EventBusClosedError(undefined, { cause: error });
        // The stream answered and said no (limits, wrong expectation): retrying cannot help.
        if (error instanceof JetStreamApiError && error.status !== 503) {
          throw new EventBusError(`publish to ${subject} rejected by the stream: ${error.message}`, { cause: error });
        }
        lastError = error;
      }
    }
    throw new EventBusUnavailableError(
      `publish to ${subject} not acknowledged after ${this.publishRetries + 1} attempts (bound ${this.publishBoundMs} ms): ${messageOf(lastError)}` +
        ' (server unreachable, or no stream captures the subject); the event may or may not be stored: publish again with the same dedupeId',
      { cause: lastError },
    );
  }

  async consume(options: ConsumeOptions, handler: EventHandler): Promise<ConsumerHandle> {
    this.assertOpen();
    validateConsumeOptions(options);
    const group = new NatsConsumerGroup(
      {
        nc: this.connection,
        js: this.apiJs,
        jsm: this.jsm,
        leaseJs: (timeout) => jetstream(this.connection, { timeout }),
        leaseJsm: (timeout) => jetstreamManager(this.connection, { timeout, checkAPI: false }),
        publish: (subject, data, publishOptions) => this.send(subject, data, publishOptions),
        pullExpiresMs: this.pullExpiresMs,
        onClosed: (g) => this.groups.delete(g),
      },
      options,
      handler,
    );
    this.groups.add(group);
    try {
      await group.start();
    } catch (error) {
      await group.close().catch(() => undefined);
      throw this.translate(error, `consume ${options.durable}`);
    }
    return group;
  }

  /**
   * A core NATS subscription: JetStream publishes are ordinary messages on their subject, so every
   * subscriber sees them as they are published, without a consumer on the server.
   */
  async subscribe(subject: string, handler: LiveHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.assertOpen();
    assertSubscribeSubject(subject);
    const live: LiveSubscription = new LiveSubscription(subject, handler, options, () => {
      this.subscriptions.delete(live);
      if (!sub.isClosed()) sub.unsubscribe();
    });
    const sub = this.connection.subscribe(subject, {
      callback: (error, msg) => {
        if (error) {
          live.report(error);
          return;
        }
        const { headers, dedupeId } = splitHeaders(msg.headers);
        live.deliver({
          subject: msg.subject,
          data: msg.data,
          headers,
          dedupeId,
          sequence: 0,
          deliveryCount: 1,
          partition: 0,
          publishedAt: new Date(),
        });
      },
    });
    this.subscriptions.add(live);
    // Once the server has our SUB, everything published afterwards reaches us. If it cannot be
    // confirmed now (disconnected), the client sends the SUB on reconnect and onGap is called.
    await within(this.connection.flush().catch(() => undefined), this.apiTimeoutMs);
    return live;
  }

  /**
   * Deletes the subject's messages one by one with `erase` (STREAM.MSG.DELETE), not with a
   * filtered STREAM.PURGE, for two reasons seen on nats-server 2.9.10 (the version we run):
   * - a filtered purge moves every consumer whose filter covers the subject (here the updater's
   *   `<durable>-p<i>`, filter `aimass.*.feedback.<i>.>`) past the purged messages *and* past
   *   every message of other subjects stored before them, so other users' unconsumed feedback in
   *   that partition would be skipped (nats-server#3838, fixed in later releases);
   * - a purge only unlinks the messages: their bytes (payload and subject, i.e. the pseudonym)
   *   stay in the block file, whereas an erased delete overwrites them.
   * One lookup and one delete per message: an erasure's few events, not bulk deletion.
   */
  async purge(stream: string, subject: string): Promise<PurgeResult> {
    this.assertOpen();
    assertName(stream, 'stream name');
    assertExactSubject(subject, 'purge');
    try {
      const info = await this.jsm.streams.info(stream, { subjects_filter: subject });
      if (!info.config.subjects.some((pattern) => subjectMatches(pattern, subject))) {
        throw new EventBusError(`stream ${stream} does not capture subject ${subject} (it captures ${info.config.subjects.join(', ')})`);
      }
      if ((info.state.subjects?.[subject] ?? 0) === 0) return { purged: 0 };
      // What the stream held when asked: later publishes on the subject are not chased.
      const last = info.state.last_seq;
      let purged = 0;
      for (let seq = info.state.first_seq; seq <= last; ) {
        // The server (2.9+) takes next_by_subj on STREAM.MSG.GET; the client types it for direct get only.
        const found = await this.jsm.streams.getMessage(stream, { next_by_subj: subject, seq } as unknown as MsgRequest);
        if (found === null || found.seq > last) break;
        if (await this.eraseMessage(stream, found.seq)) purged++;
        seq = found.seq + 1;
      }
      return { purged };
    } catch (error) {
      throw this.translate(error, `purge ${subject} from ${stream}`);
    }
  }

  async purgeMatching(stream: string, filter: string): Promise<PurgeResult> {
    this.assertOpen();
    assertName(stream, 'stream name');
    assertSubscribeSubject(filter);
    let subjects: string[];
    try {
      const info = await this.jsm.streams.info(stream, { subjects_filter: filter });
      subjects = Object.keys(info.state.subjects ?? {}).filter((subject) => subjectMatches(filter, subject));
    } catch (error) {
      throw this.translate(error, `list the subjects matching ${filter} in ${stream}`);
    }
    let purged = 0;
    for (const subject of subjects) purged += (await this.purge(stream, subject)).purged;
    return { purged };
  }

  /** False when the message was gone already (retention, a concurrent purge). */
  private async eraseMessage(stream: string, seq: number): Promise<boolean> {
    try {
      return await this.jsm.streams.deleteMessage(stream, seq, true);
    } catch (error) {
      if (error instanceof JetStreamApiError && /no message found/i.test(error.message)) return false;
      throw error;
    }
  }

  /** What was published while the connection was down is lost to core subscriptions. */
  private async watchReconnects(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === 'reconnect') for (const live of [...this.subscriptions]) live.gap();
    }
  }

  private translate(error: unknown, what: string): Error {
    if (error instanceof EventBusError || error instanceof RangeError) return error;
    if (this.connection.isClosed()) return new EventBusClosedError(undefined, { cause: error });
    if (error instanceof JetStreamApiError && error.status !== 503) {
      return new EventBusError(`${what}: ${error.message}`, { cause: error });
    }
    return new EventBusUnavailableError(`${what}: ${messageOf(error)}`, { cause: error });
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    await Promise.all([...[...this.subscriptions].map((live) => live.close()), ...[...this.groups].map((group) => group.close())]);
    if (!this.ownsConnection || this.connection.isClosed()) return;
    // Flush the last acks; a connection that cannot drain (server gone) is simply closed.
    const drained = await within(
      this.connection.drain().then(
        () => true,
        () => false,
      ),
      2000,
    );
    if (drained !== true) await this.connection.close();
  }
}
