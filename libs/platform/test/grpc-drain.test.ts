import {
  credentials,
  makeGenericClientConstructor,
  status as Status,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { describe, expect, it } from 'vitest';
import { CancelledError, DRAINING_MESSAGE, callUnary, createGrpcServer, unary, type GrpcServer } from '../src/index.js';
import {
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

function healthStatus(address: string): Promise<string> {
  const client = new HealthClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    (client as unknown as Record<string, (...a: unknown[]) => void>)['check']!({ service: '' }, (err: ServiceError | null, res?: { status: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    }),
  );
}

/** A server whose Get waits for `release` before answering. */
async function slowServer(drainTimeoutMs: number) {
  const logs = captureLogs('drain');
  const started = deferred();
  const release = deferred();
  const aborted = deferred<unknown>();
  const { definition } = loadEcho();
  const server: GrpcServer = createGrpcServer({
    config: serverConfig({ drainTimeoutMs }),
    logger: logs.logger,
    services: [
      {
        definition,
        implementation: {
          Get: unary<EchoRequest, EchoResponse>(async (req, ctx) => {
            if (req.text === 'slow') {
              ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason));
              started.resolve();
              await release.promise;
            }
            return { text: `done:${req.text}`, attempt: 1, trace_id: '' };
          }),
        },
      },
    ],
  });
  const { address } = await server.start();
  return { server, address, started, release, aborted, logs };
}

describe('drain', () => {
  it('lets the in-flight call finish, refuses new calls with UNAVAILABLE, then closes', async () => {
    const { server, address, started, release, logs } = await slowServer(10_000);
    const client = rawClient(address);
    const get = (text: string) => callUnary<EchoRequest, EchoResponse>(client['Get']!.bind(client) as never, { text, count: 0 }, { deadline: deadlineIn(10_000) });

    const inFlight = get('slow');
    await started.promise;
    expect(server.inFlight).toBe(1);

    const drained = server.drain();
    expect(server.draining).toBe(true);
    expect(await healthStatus(address)).toBe('NOT_SERVING');

    const refused = await get('new').then(
      () => undefined,
      (err: { cause?: ServiceError }) => err.cause,
    );
    expect(refused?.code).toBe(Status.UNAVAILABLE);
    expect(refused?.details).toBe(DRAINING_MESSAGE);

    release.resolve();
    expect((await inFlight).text).toBe('done:slow');
    await drained;
    expect(server.inFlight).toBe(0);

    // Closed: a fresh client cannot connect any more.
    const after = rawClient(address);
    const err = await callUnary(after['Get']!.bind(after) as never, { text: 'late', count: 0 }, { deadline: deadlineIn(500) }).then(
      () => undefined,
      (e: { cause?: ServiceError }) => e.cause,
    );
    expect([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]).toContain(err?.code);
    expect(logs.lines().map((l) => l['msg'])).toEqual(expect.arrayContaining(['draining', 'drained']));
    client.close();
    after.close();
  });

  it('ends calls still running after drainTimeoutMs with UNAVAILABLE', async () => {
    const { server, address, started, aborted } = await slowServer(200);
    const client = rawClient(address);
    const inFlight = callUnary(client['Get']!.bind(client) as never, { text: 'slow', count: 0 }, { deadline: deadlineIn(10_000) }).then(
      () => undefined,
      (e: { cause?: ServiceError }) => e.cause,
    );
    await started.promise;
    const t0 = Date.now();
    await server.drain();
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2_000);
    const err = await inFlight;
    expect(err?.code).toBe(Status.UNAVAILABLE);
    expect(err?.details).toBe('server shut down before the call finished');
    // The handler learns that its call is over.
    expect(await aborted.promise).toBeInstanceOf(CancelledError);
    client.close();
  });

  it('does not wait for an open health Watch stream', async () => {
    const { server, address } = await slowServer(10_000);
    const health = new HealthClient(address, credentials.createInsecure());
    const watch = (health as unknown as Record<string, (r: unknown) => ClientReadableStream<{ status: string }>>)['watch']!({ service: '' });
    const statuses: string[] = [];
    const watchEnded = new Promise<ServiceError | undefined>((resolve) => {
      watch.on('error', (e: ServiceError) => resolve(e));
      watch.on('end', () => resolve(undefined));
    });
    await new Promise<void>((resolve) =>
      watch.on('data', (m: { status: string }) => {
        statuses.push(m.status);
        resolve();
      }),
    );
    const t0 = Date.now();
    await server.drain();
    expect(Date.now() - t0).toBeLessThan(2_000);
    await watchEnded;
    expect(statuses[0]).toBe('SERVING');
    expect(statuses).toContain('NOT_SERVING');
    health.close();
  });
});
