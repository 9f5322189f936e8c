import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { ensureJetStream } from './streams.js';

const encoder = new TextEncoder();

/**
 * A JetStream key-value bucket with a TTL, laid out exactly as the NATS KV (stream
 * `KV_<bucket>`, subjects `$KV.<bucket>.<key>`, one message per key) so the `nats kv` tools
 * can inspect it. It is driven through the plain JetStream API because the KV client package
 * is not among this project's dependencies; the operations needed are few:
 *   create  = publish expecting the key's last sequence to be 0 (no live entry)
 *   update  = publish expecting the key's last sequence to be our revision
 *   expiry  = the stream's max_age: an entry not rewritten within the TTL disappears
 *   release = purge of the key's subject (only while our lease is certainly still live)
 */
export class LeaseBucket {
  readonly stream: string;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly bucket: string,
    readonly ttlMs: number,
    private readonly replicas = 1,
  ) {
    this.stream = `KV_${bucket}`;
  }

  subject(key: string): string {
    return `$KV.${this.bucket}.${key}`;
  }

  async ensure(): Promise<void> {
    await ensureJetStream(this.jsm, {
      name: this.stream,
      subjects: [`$KV.${this.bucket}.>`],
      max_msgs_per_subject: 1,
      max_age: nanos(this.ttlMs),
      duplicate_window: nanos(Math.min(this.ttlMs, 120_000)),
      // File storage: a restarted server must still know who holds what until the TTL says otherwise.
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: true,
      num_replicas: this.replicas,
    });
  }

  /** The revision of the new entry, or undefined when the key is held. */
  async create(key: string, value: unknown): Promise<number | undefined> {
    return this.conditionalPut(key, value, 0);
  }

  /** The new revision, or undefined when the entry is no longer ours (expired or taken). */
  async update(key: string, value: unknown, revision: number): Promise<number | undefined> {
    return this.conditionalPut(key, value, revision);
  }

  async put(key: string, value: unknown): Promise<number> {
    const ack = await this.js.publish(this.subject(key), encoder.encode(JSON.stringify(value)));
    return ack.seq;
  }

  async purge(key: string): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter: this.subject(key) });
  }

  /** Every live key, in one request (the stream reports the subjects it holds). */
  async keys(): Promise<string[]> {
    const info = await this.jsm.streams.info(this.stream, { subjects_filter: this.subject('>') });
    const head = this.subject('');
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(head.length));
  }

  private async conditionalPut(key: string, value: unknown, expected: number): Promise<number | undefined> {
    try {
      const ack = await this.js.publish(this.subject(key), encoder.encode(JSON.stringify(value)), {
        expect: { lastSubjectSequence: expected },
      });
      return ack.seq;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence) {
        return undefined;
      }
      throw error;
    }
  }
}
