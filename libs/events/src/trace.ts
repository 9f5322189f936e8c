import { context, propagation, ROOT_CONTEXT, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';

const setter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

const getter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const exact = carrier[key];
    if (exact !== undefined) return exact;
    // Transports may change the case of header names; W3C names are lower-case.
    const lower = key.toLowerCase();
    const found = Object.keys(carrier).find((k) => k.toLowerCase() === lower);
    return found === undefined ? undefined : carrier[found];
  },
};

/** Writes the active trace context (W3C `traceparent`/`tracestate`) into the headers; a no-op without an OTel SDK. */
export function injectTraceContext(headers: Record<string, string>): void {
  propagation.inject(context.active(), headers, setter);
}

/** The publisher's context, so the handler's spans become its children (not the pull loop's). */
export function extractTraceContext(headers: Readonly<Record<string, string>>): Context {
  return propagation.extract(ROOT_CONTEXT, { ...headers }, getter);
}

export function withTraceContext<T>(headers: Readonly<Record<string, string>>, fn: () => T): T {
  return context.with(extractTraceContext(headers), fn);
}
