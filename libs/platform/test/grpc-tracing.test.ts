import { Metadata, status as Status } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  callUnary,
  createClient,
  createGrpcServer,
  extractTraceContext,
  injectTraceHeaders,
  startTelemetry,
  unary,
  type GrpcServer,
  type Telemetry,
} from '../src/index.js';
import { captureLogs, loadEcho, rawClient, serverConfig, deadlineIn, type EchoRequest, type EchoResponse } from './support.js';

const SPAN_NAME = 'aimass.platformtest.v1.EchoService/Get';

async function echoServer(logs = captureLogs('traced')) {
  const { definition, Client } = loadEcho();
  const server: GrpcServer = createGrpcServer({
    config: serverConfig(),
    logger: logs.logger,
    services: [
      {
        definition,
        implementation: {
          Get: unary<EchoRequest, EchoResponse>((req, ctx) => {
            if (req.text === 'bug') throw new Error('boom');
            ctx.logger.info({ tenant: 'acme' }, 'handling');
            const active = trace.getActiveSpan()?.spanContext();
            // What an event published from here would carry.
            const headers = injectTraceHeaders({});
            return { text: headers['traceparent'] ?? '', attempt: 1, trace_id: active?.traceId ?? '' };
          }),
        },
      },
    ],
  });
  const { address } = await server.start();
  return { server, address, Client, logs };
}

describe('trace context over gRPC', () => {
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown();
    telemetry = undefined;
  });

  it('makes the server span a child of the client span, and tags log lines with it', async () => {
    telemetry = startTelemetry({ serviceName: 'trace-test', exporter: 'memory' });
    const { server, address, Client, logs } = await echoServer();
    const client = createClient(Client, { address }) as ReturnType<typeof createClient> & Record<string, (...a: unknown[]) => never>;

    const tracer = trace.getTracer('test');
    const { res, rootTraceId, rootSpanId } = await tracer.startActiveSpan('request', async (root) => {
      const r = await callUnary<EchoRequest, EchoResponse>(client['Get']!.bind(client), { text: 'hi', count: 0 });
      root.end();
      return { res: r, rootTraceId: root.spanContext().traceId, rootSpanId: root.spanContext().spanId };
    });
    await telemetry.forceFlush();

    const spans = telemetry.memoryExporter!.getFinishedSpans();
    const clientSpan = spans.find((s) => s.kind === SpanKind.CLIENT && s.name === SPAN_NAME);
    const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER && s.name === SPAN_NAME);
    expect(clientSpan).toBeDefined();
    expect(serverSpan).toBeDefined();
    expect(clientSpan!.spanContext().traceId).toBe(rootTraceId);
    expect(clientSpan!.parentSpanContext?.spanId).toBe(rootSpanId);
    expect(serverSpan!.spanContext().traceId).toBe(rootTraceId);
    expect(serverSpan!.parentSpanContext?.spanId).toBe(clientSpan!.spanContext().spanId);
    expect(serverSpan!.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.method': 'Get', 'rpc.grpc.status_code': Status.OK });

    // The handler ran inside the server span: its trace id, and what it would put on an event.
    expect(res.trace_id).toBe(rootTraceId);
    expect(res.text).toBe(`00-${rootTraceId}-${serverSpan!.spanContext().spanId}-01`);
    const line = logs.lines().find((l) => l['msg'] === 'handling');
    expect(line).toMatchObject({ trace_id: rootTraceId, span_id: serverSpan!.spanContext().spanId, rpc: `/${SPAN_NAME}` });

    client.close();
    server.forceShutdown();
  });

  it('marks server spans of internal errors as errors', async () => {
    telemetry = startTelemetry({ serviceName: 'trace-test', exporter: 'memory' });
    const { server, address, Client } = await echoServer();
    const client = createClient(Client, { address }) as ReturnType<typeof createClient> & Record<string, (...a: unknown[]) => never>;
    await expect(callUnary(client['Get']!.bind(client), { text: 'bug', count: 0 })).rejects.toThrow(/internal error/);
    await telemetry.forceFlush();
    const serverSpan = telemetry.memoryExporter!.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER);
    expect(serverSpan?.status.code).toBe(SpanStatusCode.ERROR);
    expect(serverSpan?.attributes['rpc.grpc.status_code']).toBe(Status.INTERNAL);
    client.close();
    server.forceShutdown();
  });

  it('carries an incoming traceparent through when telemetry is disabled', async () => {
    telemetry = startTelemetry({ serviceName: 'trace-test', enabled: false });
    expect(telemetry.exporter).toBe('none');
    const { server, address } = await echoServer();
    const client = rawClient(address);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const md = new Metadata();
    md.set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`);
    const res = await callUnary<EchoRequest, EchoResponse>(client['Get']!.bind(client) as never, { text: 'x', count: 0 }, {
      metadata: md,
      deadline: deadlineIn(3000),
    });
    expect(res.trace_id).toBe(traceId);
    expect(res.text).toContain(traceId);
    client.close();
    server.forceShutdown();
  });
});

describe('injectTraceHeaders / extractTraceContext', () => {
  it('round-trips the active span through a string map', async () => {
    const telemetry = startTelemetry({ serviceName: 'headers-test', exporter: 'memory' });
    try {
      const tracer = trace.getTracer('test');
      tracer.startActiveSpan('publish', (span) => {
        const headers = injectTraceHeaders({ 'content-type': 'application/x-protobuf' });
        expect(headers['traceparent']).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
        expect(headers['content-type']).toBe('application/x-protobuf');
        span.end();

        // The consumer side: a fresh root context, headers as they arrive (any case).
        const ctx = extractTraceContext({ Traceparent: headers['traceparent']! }, context.active());
        const remote = trace.getSpanContext(ctx);
        expect(remote?.traceId).toBe(span.spanContext().traceId);
        expect(remote?.spanId).toBe(span.spanContext().spanId);
        expect(remote?.isRemote).toBe(true);
        const child = tracer.startSpan('consume', {}, ctx);
        expect(child.spanContext().traceId).toBe(span.spanContext().traceId);
        child.end();
      });
      expect(extractTraceContext({}) ).toBe(context.active());
    } finally {
      await telemetry.shutdown();
    }
  });

  it('refuses a second start before shutdown', async () => {
    const t = startTelemetry({ serviceName: 'once', exporter: 'none' });
    expect(() => startTelemetry({ serviceName: 'twice', exporter: 'none' })).toThrow(/already started/);
    await t.shutdown();
    const again = startTelemetry({ serviceName: 'again', exporter: 'none' });
    await again.shutdown();
  });
});
