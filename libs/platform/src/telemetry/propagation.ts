import { context, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import type { Metadata } from '@grpc/grpc-js';

/** A string map of headers, as event envelopes or NATS headers converted to an object carry them. */
export type TraceHeaders = Record<string, string>;

/**
 * Writes the trace context of `ctx` (the active one by default) into `carrier` as W3C
 * `traceparent`/`tracestate` (and `baggage`), and returns it. A no-op when telemetry was not
 * started, since no propagator is registered then.
 */
export function injectTraceHeaders(carrier: TraceHeaders = {}, ctx: Context = context.active()): TraceHeaders {
  propagation.inject(ctx, carrier);
  return carrier;
}

const headerGetter: TextMapGetter<Readonly<Record<string, string | readonly string[] | undefined>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    // Header names are case-insensitive; carriers built from HTTP-ish sources may capitalize them.
    const direct = carrier[key] ?? Object.entries(carrier).find(([k]) => k.toLowerCase() === key)?.[1];
    if (direct === undefined) return undefined;
    return typeof direct === 'string' ? direct : [...direct];
  },
};

/**
 * The context described by `headers` (W3C trace context), on top of `base` (the active context by
 * default). Run work in it with `context.with(extractTraceContext(h), fn)` so spans started there
 * become children of the remote span.
 */
export function extractTraceContext(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
  base: Context = context.active(),
): Context {
  return propagation.extract(base, headers, headerGetter);
}

/** Reads trace headers from gRPC metadata (text values only). */
export const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const values = md.get(key).filter((v): v is string => typeof v === 'string');
    if (values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values;
  },
};

/** Writes trace headers into gRPC metadata. */
export const metadataSetter: TextMapSetter<Metadata> = {
  set: (md, key, value) => md.set(key, value),
};
