import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CancelledError,
  DeadlineExceededError,
  UnavailableError,
  callUnary,
  createClient,
  createGrpcServer,
  unary,
  type CallContext,
  type CreateClientOptions,
  type GrpcServer,
} from '../src/index.js';
import { captureLogs, deadlineIn, deferred, loadEcho, serverConfig, type EchoRequest, type EchoResponse } from './support.js';

/**
 * The server fails the first `count` attempts of each request (keyed by `text`) with the status
 * named in the text, e.g. "unavailable:2:key" or "deadline:1:key", and counts attempts.
 */
const attempts = new Map<string, number>();
const lastCtx: { ctx?: CallContext } = {};
const cancelled = deferred<unknown>();
const hangStarted = deferred();

function failing(req: EchoRequest, ctx: CallContext): EchoResponse | Promise<EchoResponse> {
  lastCtx.ctx = ctx;
  const n = (attempts.get(req.text) ?? 0) + 1;
  attempts.set(req.text, n);
  const [kind, failFirst] = req.text.split(':');
  if (kind === 'hang') {
    hangStarted.resolve();
    return new Promise((_resolve, reject) =>
      ctx.signal.addEventListener('abort', () => {
        cancelled.resolve(ctx.signal.reason);
        reject(ctx.signal.reason as Error);
      }),
    );
  }
  if (n <= Number(failFirst ?? 0)) {
    if (kind === 'unavailable') throw new UnavailableError('not now');
    if (kind === 'deadline') throw new DeadlineExceededError('upstream timed out');
  }
  return { text: req.text, attempt: n, trace_id: '' };
}

describe('createClient', () => {
  const { definition, Client } = loadEcho();
  let server: GrpcServer;
  let address: string;

  beforeAll(async () => {
    server = createGrpcServer({
      config: serverConfig(),
      logger: captureLogs().logger,
      services: [{ definition, implementation: { Get: unary(failing), Put: unary(failing) } }],
    });
    ({ address } = await server.start());
  });
  afterAll(() => server.forceShutdown());
  beforeEach(() => attempts.clear());

  const client = (overrides: Partial<CreateClientOptions> = {}) =>
    createClient(Client, {
      address,
      idempotentMethods: ['Get'],
      retry: { maxAttempts: 4, initialBackoffMs: 10, maxBackoffMs: 50 },
      ...overrides,
    }) as ReturnType<typeof createClient> & Record<string, (...a: unknown[]) => never>;

  it('retries an idempotent method on UNAVAILABLE until it succeeds', async () => {
    const c = client();
    const res = await callUnary<EchoRequest, EchoResponse>(c['Get']!.bind(c), { text: 'unavailable:2:a', count: 0 });
    expect(res.attempt).toBe(3);
    expect(attempts.get('unavailable:2:a')).toBe(3);
    c.close();
  });

  it('never retries a non-idempotent method', async () => {
    const c = client();
    await expect(callUnary(c['Put']!.bind(c), { text: 'unavailable:2:b', count: 0 })).rejects.toBeInstanceOf(UnavailableError);
    expect(attempts.get('unavailable:2:b')).toBe(1);
    c.close();
  });

  it('gives up after maxAttempts', async () => {
    const c = client({ retry: { maxAttempts: 3, initialBackoffMs: 5, maxBackoffMs: 10 } });
    await expect(callUnary(c['Get']!.bind(c), { text: 'unavailable:99:c', count: 0 })).rejects.toBeInstanceOf(UnavailableError);
    expect(attempts.get('unavailable:99:c')).toBe(3);
    c.close();
  });

  it('honours maxAttempts above grpc-js default limit of 5', async () => {
    const c = client({ retry: { maxAttempts: 7, initialBackoffMs: 5, maxBackoffMs: 10 } });
    const res = await callUnary<EchoRequest, EchoResponse>(c['Get']!.bind(c), { text: 'unavailable:6:c2', count: 0 });
    expect(res.attempt).toBe(7);
    c.close();
  });

  it('never retries past the overall deadline', async () => {
    const c = client({ retry: { maxAttempts: 10, initialBackoffMs: 150, maxBackoffMs: 1000 } });
    const t0 = Date.now();
    await expect(
      callUnary(c['Get']!.bind(c), { text: 'unavailable:99:d', count: 0 }, { deadline: deadlineIn(400) }),
    ).rejects.toBeInstanceOf(DeadlineExceededError);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(1_000);
    // 150 + 300 ms of backoff (±20%) already exceed 400 ms: at most 3 attempts fit.
    expect(attempts.get('unavailable:99:d')).toBeGreaterThanOrEqual(2);
    expect(attempts.get('unavailable:99:d')).toBeLessThanOrEqual(3);
    c.close();
  });

  it('retries a server-reported DEADLINE_EXCEEDED only when configured', async () => {
    const plain = client();
    await expect(callUnary(plain['Get']!.bind(plain), { text: 'deadline:1:e', count: 0 })).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(attempts.get('deadline:1:e')).toBe(1);
    plain.close();
    const withDeadline = client({
      retry: { initialBackoffMs: 5, maxBackoffMs: 10, retryableCodes: [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED] },
    });
    const res = await callUnary<EchoRequest, EchoResponse>(withDeadline['Get']!.bind(withDeadline), { text: 'deadline:1:f', count: 0 });
    expect(res.attempt).toBe(2);
    withDeadline.close();
  });

  it('gives calls without a deadline the default one, so the server accepts them', async () => {
    const c = client({ defaultDeadlineMs: 1_234 });
    const before = Date.now();
    await callUnary(c['Get']!.bind(c), { text: 'ok:0:g', count: 0 });
    const deadline = lastCtx.ctx!.deadline!.getTime();
    expect(deadline).toBeGreaterThanOrEqual(before + 1_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 1_234);
    c.close();
  });

  it('accepts method names as in the proto, as client methods, or as paths, and rejects unknown ones', () => {
    for (const name of ['Get', 'get', '/aimass.platformtest.v1.EchoService/Get']) {
      expect(() => createClient(Client, { address, idempotentMethods: [name] }).close()).not.toThrow();
    }
    expect(() => createClient(Client, { address, idempotentMethods: ['Gte'] })).toThrow(/"Gte" is not in the service \(methods: Get, Put, List\)/);
  });

  it('cancels the call when the signal aborts, and the server handler sees it', async () => {
    const c = client();
    const controller = new AbortController();
    const pending = callUnary(c['Put']!.bind(c), { text: 'hang:0:h', count: 0 }, { signal: controller.signal, deadline: deadlineIn(10_000) });
    await hangStarted.promise;
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
    expect(await cancelled.promise).toBeInstanceOf(CancelledError);
    c.close();
  });
});
