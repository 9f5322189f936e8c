import { jetstreamManager, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { FEEDBACK_STREAM, decodeEvent, type NatsEventBus } from '@aimass/events';
import type { v1 } from '@aimass/proto';

/** One message as the feedback stream stores it. */
export interface StoredFeedback {
  readonly sequence: number;
  readonly subject: string;
  /** Every header, the transport's own (`Nats-Msg-Id`) included. */
  readonly headers: Record<string, string[]>;
  readonly data: Uint8Array;
  readonly event: v1.FeedbackRecorded & { envelope: v1.EventEnvelope };
}

/**
 * Reads the feedback stream back as it is stored on the server (JetStream's message-get API),
 * so a test sees exactly what a consumer would get, duplicates included if there were any.
 */
export class FeedbackStreamReader {
  private constructor(private readonly jsm: JetStreamManager) {}

  static async open(bus: NatsEventBus): Promise<FeedbackStreamReader> {
    return new FeedbackStreamReader(await jetstreamManager(bus.connection, { timeout: 5_000 }));
  }

  /** The stream as the server has it (configuration and state). */
  info(): Promise<StreamInfo> {
    return this.jsm.streams.info(FEEDBACK_STREAM.name);
  }

  /** Every stored event, in stream order; with `pseudonym`, only that user's. */
  async events(pseudonym?: string): Promise<StoredFeedback[]> {
    const info = await this.jsm.streams.info(FEEDBACK_STREAM.name);
    const out: StoredFeedback[] = [];
    if (info.state.messages === 0) return out;
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await this.jsm.streams.getMessage(FEEDBACK_STREAM.name, { seq });
      if (!m) continue;
      const headers: Record<string, string[]> = {};
      for (const key of m.header?.keys() ?? []) headers[key] = m.header.values(key);
      const event = decodeEvent('aimass.v1.FeedbackRecorded', m.data);
      if (pseudonym === undefined || event.envelope.userPseudonym === pseudonym) out.push({ sequence: m.seq, subject: m.subject, headers, data: m.data, event });
    }
    return out;
  }
}
