import type { Http2Server, Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

/** HTTP/2 receive windows of a gRPC server, in bytes. */
export interface FlowControlWindows {
  /** Per stream (SETTINGS_INITIAL_WINDOW_SIZE): how much of one request a client may send unacknowledged. */
  readonly streamBytes: number;
  /** Per connection (WINDOW_UPDATE on stream 0): the same, summed over every stream of the connection. */
  readonly connectionBytes: number;
}

/** HTTP/2's own default, and what a grpc-js server keeps unless it is widened. */
export const HTTP2_DEFAULT_WINDOW_BYTES = 65_535;
/** The protocol's ceiling for either window (2^31 - 1). */
export const HTTP2_MAX_WINDOW_BYTES = 2 ** 31 - 1;

/**
 * The platform's defaults (`grpc.flowControlWindowBytes`, `grpc.connectionFlowControlWindowBytes`).
 * On general-model at 64 clients, 256 KiB per stream already filled every batch; 1 MiB lets one
 * stream carry a [1,128,768] FP32 tensor (393 KiB) without waiting, and 8 MiB lets 16 of them share a
 * connection. A window is not a buffer: grpc-js reads what arrives at once, and
 * `maxReceiveMessageBytes` still bounds each request.
 */
export const DEFAULT_FLOW_CONTROL_WINDOWS: FlowControlWindows = { streamBytes: 1024 * 1024, connectionBytes: 8 * 1024 * 1024 };

/**
 * Widens the HTTP/2 receive windows of a bound grpc-js server, for the sessions it accepts from now
 * on. Returns false, and changes nothing, when the server's internals are not the ones this was
 * written against.
 *
 * Why: with HTTP/2's 64 KiB windows, a client may have only 64 KiB in flight per connection, summed
 * over its streams, before it must wait for the server's event loop to acknowledge it. A busy server
 * (a GC pause, a batch being assembled) then starves itself of requests: at 64 concurrent 16 KiB
 * requests over 4 connections, general-model's batches held 9.6 rows instead of 16, and 393 KiB
 * tensors need six round trips each. grpc-js reads `grpc-node.flow_control_window` on clients only
 * (grpc/grpc-node#3058 adds it to servers and is not released), so this reaches the http2 servers
 * grpc-js keeps in `http2Servers`, as that change does from inside. The platform's server test
 * checks the windows a raw HTTP/2 client is granted, so a grpc-js upgrade that moves them fails there.
 */
export function widenFlowControlWindows(server: Server, windows: FlowControlWindows): boolean {
  const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map) || http2Servers.size === 0) return false;
  const targets = [...http2Servers.keys()] as unknown[];
  if (!targets.every(isHttp2Server)) return false;
  for (const target of targets) {
    // Settings apply to sessions accepted afterwards, so start() calls this right after the bind.
    target.updateSettings({ initialWindowSize: windows.streamBytes });
    target.on('session', (session: ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(windows.connectionBytes);
      } catch {
        // A session destroyed before this listener ran has no window left to widen.
      }
    });
  }
  return true;
}

function isHttp2Server(value: unknown): value is Http2Server | Http2SecureServer {
  const candidate = value as { updateSettings?: unknown; on?: unknown } | null;
  return typeof candidate?.updateSettings === 'function' && typeof candidate.on === 'function';
}
