import { context, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { extractTraceContext, injectTraceContext } from './trace.js';

describe('trace propagation without an OpenTelemetry SDK', () => {
  it('is a no-op: nothing injected, nothing extracted, no error', () => {
    const headers: Record<string, string> = { 'x-a': '1' };
    injectTraceContext(headers);
    expect(headers).toEqual({ 'x-a': '1' });
    const ctx = extractTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(trace.getSpanContext(ctx)).toBeUndefined();
    expect(context.with(ctx, () => 7)).toBe(7);
  });
});
