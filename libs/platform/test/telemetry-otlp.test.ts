import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { startTelemetry } from '../src/index.js';

describe('startTelemetry with the OTLP exporter', () => {
  it('sends spans as OTLP/HTTP protobuf to the configured endpoint, and leaves the environment as it was', async () => {
    const requests: Array<{ url: string; contentType: string; body: Buffer }> = [];
    let received!: () => void;
    const gotOne = new Promise<void>((r) => (received = r));
    const collector = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({ url: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        received();
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const { port } = collector.address() as AddressInfo;
    const before = process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];

    const telemetry = startTelemetry({ serviceName: 'otlp-test', exporter: 'otlp', otlpEndpoint: `http://127.0.0.1:${port}` });
    try {
      expect(process.env['OTEL_EXPORTER_OTLP_ENDPOINT']).toBe(before);
      trace.getTracer('test').startSpan('exported-span').end();
      await telemetry.forceFlush();
      await gotOne;
      expect(requests[0]!.url).toBe('/v1/traces');
      expect(requests[0]!.contentType).toBe('application/x-protobuf');
      // Protobuf keeps strings verbatim: the span and service names are in the payload.
      expect(requests[0]!.body.includes(Buffer.from('exported-span'))).toBe(true);
      expect(requests[0]!.body.includes(Buffer.from('otlp-test'))).toBe(true);
    } finally {
      await telemetry.shutdown();
      collector.close();
    }
  });
});
