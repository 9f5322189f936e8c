import type { MsgHdrs } from '@nats-io/nats-core';

/** The publisher's headers without the transport's own (`Nats-*`), and the dedupe id (`Nats-Msg-Id`). */
export function splitHeaders(raw: MsgHdrs | undefined): { headers: Record<string, string>; dedupeId: string | undefined } {
  const headers: Record<string, string> = {};
  let dedupeId: string | undefined;
  if (raw) {
    for (const [key, values] of raw) {
      const lower = key.toLowerCase();
      if (lower === 'nats-msg-id') dedupeId = values[0];
      else if (!lower.startsWith('nats-')) headers[key] = values[values.length - 1] ?? '';
    }
  }
  return { headers, dedupeId };
}
