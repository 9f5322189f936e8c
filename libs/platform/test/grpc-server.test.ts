import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  Metadata,
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  status as Status,
  type ClientDuplexStream,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelledError,
  DEADLINE_REQUIRED_MESSAGE,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  callUnary,
  createGrpcServer,
  serverStreaming,
  unary,
  type CallContext,
  type GrpcServer,
} from '../src/index.js';
import {
  ECHO_SERVICE,
  buildDescriptorSet,
  captureLogs,
  deadlineIn,
  deferred,
  loadEcho,
  rawClient,
  serverConfig,
  type EchoRequest,
  type EchoResponse,
} from './support.js';

const HealthClient = makeGenericClientConstructor(healthService, 'Health');

function healthCheck(address: string, service: string): Promise<string> {
  const client = new HealthClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    // No deadline on purpose: probes do not set one and health is exempt.
    (client as unknown as Record<string, (...a: unknown[]) => void>)['check']!({ service }, (err: ServiceError | null, res?: { status: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    }),
  );
}

function expectCode(promise: Promise<unknown>, code: Status): Promise<ServiceError> {
  return promise.then(
    () => {
      throw new Error(`expected status ${Status[code]}, got success`);
    },
    (err: ServiceError & { cause?: ServiceError }) => {
      const e = err.cause ?? err;
      expect(Status[e.code]).toBe(Status[code]);
      return e;
    },
  );
}

describe('createGrpcServer', () => {
  const logs = captureLogs('echo');
  const { definition } = loadEcho();
  const seen: { ctx?: CallContext } = {};
  const cancelObserved = deferred<unknown>();
  const slowStarted = deferred();
  const generatorClosed = deferred<number>();
  let server: GrpcServer;
  let address: string;

  beforeAll(async () => {
    server = createGrpcServer({
      config: serverConfig({ maxDeadlineMs: 60_000, maxReceiveMessageBytes: 64 * 1024 }),
      logger: logs.logger,
      descriptorSet: buildDescriptorSet(),
      services: [
        {
          definition,
          implementation: {
            Get: unary<EchoRequest, EchoResponse>(async (req, ctx) => {
              seen.ctx = ctx;
              switch (req.text) {
                case 'not-found':
                  throw new NotFoundError('no such thing');
                case 'quota':
                  throw new ResourceExhaustedError('quota exceeded', { retryAfterMs: 1200 });
                case 'bad':
                  throw new InvalidArgumentError('count must be positive', { field: 'count' });
                case 'bug':
                  throw new Error('secret connection string mongodb://root:hunter2@db');
                case 'wait-for-cancel':
                  slowStarted.resolve();
                  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
                  cancelObserved.resolve(ctx.signal.reason);
                  throw ctx.signal.reason;
                default:
                  return { text: `echo:${req.text}`, attempt: 1, trace_id: '' };
              }
            }),
            // A hand-written grpc-js handler that throws synchronously.
            Put: () => {
              throw new Error('sync bug with tenant secret s3cr3t');
            },
            List: serverStreaming<EchoRequest, EchoResponse>(async function* (req) {
              let produced = 0;
              try {
                for (let i = 0; i < req.count; i++) {
                  if (req.text === 'fail' && i === 2) throw new ConflictLike();
                  produced++;
                  yield { text: `item-${i}`, attempt: i, trace_id: '' };
                }
              } finally {
                generatorClosed.resolve(produced);
              }
            }),
          },
        },
      ],
    });
    ({ address } = await server.start());
  });

  afterAll(() => server.forceShutdown());

  class ConflictLike extends NotFoundError {
    constructor() {
      super('item 2 vanished');
    }
  }

  it('serves a unary handler written as async (request, ctx) => response', async () => {
    const client = rawClient(address);
    const md = new Metadata();
    md.set('x-request-id', 'r-1');
    const before = Date.now();
    const res = await callUnary<EchoRequest, EchoResponse>(client['Get']!.bind(client) as never, { text: 'hi', count: 0 }, {
      deadline: deadlineIn(3000),
      metadata: md,
    });
    expect(res.text).toBe('echo:hi');
    expect(seen.ctx!.method).toBe(`/${ECHO_SERVICE}/Get`);
    expect(seen.ctx!.metadata.get('x-request-id')).toEqual(['r-1']);
    expect(seen.ctx!.deadline!.getTime()).toBeGreaterThan(before + 2000);
    expect(seen.ctx!.remainingMs()).toBeLessThanOrEqual(3000);
    expect(seen.ctx!.peer).toContain('127.0.0.1');
    client.close();
  });

  it('refuses an application call without a deadline, but answers health without one', async () => {
    const client = rawClient(address);
    const err = await expectCode(callUnary(client['Get']!.bind(client) as never, { text: 'hi', count: 0 }), Status.INVALID_ARGUMENT);
    expect(err.details).toBe(DEADLINE_REQUIRED_MESSAGE);
    expect(err.details).toMatch(/^deadline required: set a deadline on the call \(e\.g\. /);
    expect(await healthCheck(address, '')).toBe('SERVING');
    client.close();
  });

  it('refuses a deadline further away than maxDeadlineMs', async () => {
    const client = rawClient(address);
    const err = await expectCode(
      callUnary(client['Get']!.bind(client) as never, { text: 'hi', count: 0 }, { deadline: deadlineIn(3_600_000) }),
      Status.INVALID_ARGUMENT,
    );
    expect(err.details).toContain('deadline too far away');
    client.close();
  });

  it('maps thrown domain errors to their status, with metadata', async () => {
    const client = rawClient(address);
    const call = (text: string) => callUnary(client['Get']!.bind(client) as never, { text, count: 0 }, { deadline: deadlineIn(3000) });
    expect((await expectCode(call('not-found'), Status.NOT_FOUND)).details).toBe('no such thing');
    const quota = await expectCode(call('quota'), Status.RESOURCE_EXHAUSTED);
    expect(quota.metadata.get('retry-after-ms')).toEqual(['1200']);
    const bad = await expectCode(call('bad'), Status.INVALID_ARGUMENT);
    expect(bad.metadata.get('invalid-argument-field')).toEqual(['count']);
    // The client side gets the domain error back.
    await expect(call('quota')).rejects.toMatchObject({ name: 'ResourceExhaustedError', retryAfterMs: 1200 });
    client.close();
  });

  it('turns an unknown error into a generic INTERNAL and logs it with the same reference', async () => {
    const client = rawClient(address);
    const err = await expectCode(
      callUnary(client['Get']!.bind(client) as never, { text: 'bug', count: 0 }, { deadline: deadlineIn(3000) }),
      Status.INTERNAL,
    );
    expect(err.details).toMatch(/^internal error \(ref [0-9a-f]+\)$/);
    expect(err.details).not.toContain('hunter2');
    const ref = err.metadata.get('error-ref')[0];
    const logged = logs.lines().find((l) => l['errorRef'] === ref);
    expect(logged).toMatchObject({ level: 'error', rpc: `/${ECHO_SERVICE}/Get` });
    const syncErr = await expectCode(
      callUnary(client['Put']!.bind(client) as never, { text: 'x', count: 0 }, { deadline: deadlineIn(3000) }),
      Status.INTERNAL,
    );
    expect(syncErr.details).not.toContain('s3cr3t');
    client.close();
  });

  it('aborts ctx.signal with CancelledError when the client cancels', async () => {
    const client = rawClient(address);
    const controller = new AbortController();
    const pending = callUnary(client['Get']!.bind(client) as never, { text: 'wait-for-cancel', count: 0 }, {
      deadline: deadlineIn(10_000),
      signal: controller.signal,
    });
    await slowStarted.promise;
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
    expect(await cancelObserved.promise).toBeInstanceOf(CancelledError);
    client.close();
  });

  it('streams from an async generator and maps an error thrown mid-stream', async () => {
    const client = rawClient(address);
    const collect = (text: string, count: number) =>
      new Promise<{ items: string[]; err?: ServiceError }>((resolve) => {
        const items: string[] = [];
        const stream = (client['List'] as (r: unknown, o: unknown) => ClientReadableStream<EchoResponse>)(
          { text, count },
          { deadline: deadlineIn(3000) },
        );
        stream.on('data', (m: EchoResponse) => items.push(m.text));
        stream.on('error', (err: ServiceError) => resolve({ items, err }));
        stream.on('end', () => resolve({ items }));
      });
    const ok = await collect('ok', 3);
    expect(ok).toEqual({ items: ['item-0', 'item-1', 'item-2'] });
    const failed = await collect('fail', 5);
    expect(failed.items).toEqual(['item-0', 'item-1']);
    expect(failed.err?.code).toBe(Status.NOT_FOUND);
    expect(failed.err?.details).toBe('item 2 vanished');
    client.close();
  });

  it('enforces the receive size limit', async () => {
    const client = rawClient(address);
    await expectCode(
      callUnary(client['Get']!.bind(client) as never, { text: 'x'.repeat(100 * 1024), count: 0 }, { deadline: deadlineIn(3000) }),
      Status.RESOURCE_EXHAUSTED,
    );
    client.close();
  });

  it('reports health per service and overall', async () => {
    expect(await healthCheck(address, ECHO_SERVICE)).toBe('SERVING');
    server.setServingStatus(ECHO_SERVICE, 'NOT_SERVING');
    expect(await healthCheck(address, ECHO_SERVICE)).toBe('NOT_SERVING');
    server.setServingStatus(ECHO_SERVICE, 'SERVING');
    await expect(healthCheck(address, 'no.such.Service')).rejects.toMatchObject({ code: Status.NOT_FOUND });
  });

  it('answers server reflection (without a deadline) for the app service and health', async () => {
    const reflectionDir = dirname(createRequire(import.meta.url).resolve('@grpc/reflection'));
    const protoFile = join(reflectionDir, '../proto/grpc/reflection/v1/reflection.proto');
    const pkg = loadPackageDefinition(loadSync(protoFile, { keepCase: true, defaults: true, oneofs: true }));
    const v1 = ((pkg['grpc'] as GrpcObject)['reflection'] as GrpcObject)['v1'] as GrpcObject;
    const Reflection = v1['ServerReflection'] as ServiceClientConstructor;
    const client = new Reflection(address, credentials.createInsecure());
    type ListResponse = { list_services_response?: { service: Array<{ name: string }> } };
    const stream = (client as unknown as Record<string, () => ClientDuplexStream<object, ListResponse>>)['ServerReflectionInfo']!();
    const names = await new Promise<string[]>((resolve, reject) => {
      stream.on('data', (res: ListResponse) => {
        resolve((res.list_services_response?.service ?? []).map((s) => s.name));
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
    expect(names).toContain(ECHO_SERVICE);
    expect(names).toContain('grpc.health.v1.Health');
    client.close();
  });

  it('stops the generator (its finally runs) when the client cancels a stream', async () => {
    const client = rawClient(address);
    const stream = (client['List'] as (r: unknown, o: unknown) => ClientReadableStream<EchoResponse>)(
      { text: 'long', count: 1_000_000 },
      { deadline: deadlineIn(10_000) },
    );
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.on('error', () => undefined);
    stream.cancel();
    const produced = await generatorClosed.promise;
    expect(produced).toBeLessThan(1_000_000);
    client.close();
  });

  it('aborts ctx.signal with DeadlineExceededError when the deadline passes', async () => {
    const local = createGrpcServer({
      config: serverConfig(),
      logger: logs.logger,
      services: [
        {
          definition,
          implementation: {
            Get: unary<EchoRequest, EchoResponse>(async (_req, ctx) => {
              const reason = await new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason)));
              deadlineReason.resolve(reason);
              throw reason;
            }),
          },
        },
      ],
    });
    const deadlineReason = deferred<unknown>();
    const { address: localAddress } = await local.start();
    const client = rawClient(localAddress);
    await expectCode(callUnary(client['Get']!.bind(client) as never, { text: 'x', count: 0 }, { deadline: deadlineIn(150) }), Status.DEADLINE_EXCEEDED);
    expect(await deadlineReason.promise).toBeInstanceOf(DeadlineExceededError);
    client.close();
    local.forceShutdown();
  });
});
