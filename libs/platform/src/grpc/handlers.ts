import { once } from 'node:events';
import type {
  ServerErrorResponse,
  ServerWritableStream,
  handleServerStreamingCall,
  handleUnaryCall,
} from '@grpc/grpc-js';
import { toGrpcStatus } from '../errors/grpc-mapping.js';
import { createCallContext, type CallContext } from './call-context.js';

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res> | Res;
export type ServerStreamingHandler<Req, Res> = (request: Req, ctx: CallContext) => AsyncIterable<Res> | Iterable<Res>;

function errorResponse(err: unknown, ctx: CallContext): ServerErrorResponse {
  const status = toGrpcStatus(err, { logger: ctx.logger, method: ctx.method });
  return Object.assign(new Error(status.details), status);
}

/**
 * Adapts `async (request, ctx) => response` to a grpc-js unary handler. A thrown or rejected error
 * is mapped with `toGrpcStatus` (domain errors keep their code and message; anything else becomes
 * a logged INTERNAL). Once the call is cancelled or past its deadline the outcome is dropped.
 */
export function unary<Req, Res>(handler: UnaryHandler<Req, Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const ctx = createCallContext(call);
    // new Promise runs the handler synchronously, so its first step runs in the caller's
    // (the wrapper's) trace context and a synchronous throw is caught like a rejection.
    new Promise<Res>((resolve) => resolve(handler(call.request, ctx)))
      .then(
        (response) => callback(null, response),
        (err: unknown) => {
          if (call.cancelled) {
            ctx.logger.debug({ err: String(err) }, 'handler failed after the call ended');
            return;
          }
          callback(errorResponse(err, ctx));
        },
      )
      .finally(() => ctx.dispose());
  };
}

async function writeAll<Res>(call: ServerWritableStream<unknown, Res>, items: AsyncIterable<Res> | Iterable<Res>, signal: AbortSignal) {
  for await (const item of items) {
    if (call.cancelled) return;
    if (!call.write(item)) {
      try {
        await once(call, 'drain', { signal });
      } catch {
        return; // cancelled while waiting for the client to read: stop producing
      }
    }
  }
  if (!call.cancelled) call.end();
}

/**
 * Adapts a handler returning an (async) iterable — typically an `async function*` — to a grpc-js
 * server-streaming handler. Respects back-pressure, stops iterating (running the generator's
 * `finally`) when the call is cancelled, and maps a thrown error like `unary`.
 */
export function serverStreaming<Req, Res>(handler: ServerStreamingHandler<Req, Res>): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const ctx = createCallContext(call);
    new Promise<AsyncIterable<Res> | Iterable<Res>>((resolve) => resolve(handler(call.request, ctx)))
      .then((items) => writeAll(call, items, ctx.signal))
      .catch((err: unknown) => {
        if (call.cancelled) return;
        call.emit('error', errorResponse(err, ctx));
      })
      .finally(() => ctx.dispose());
  };
}
