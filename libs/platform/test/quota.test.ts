import {
  Metadata,
  ServerInterceptingCall,
  credentials,
  makeGenericClientConstructor,
  status as Status,
  type ClientUnaryCall,
  type ServerInterceptor,
  type ServiceError,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NotFoundError,
  RETRY_AFTER_MS_KEY,
  TENANT_METADATA_KEY,
  TenantQuotas,
  createGrpcServer,
  quotaInterceptor,
  unary,
  type GrpcServer,
} from '../src/index.js';
import { captureLogs, deadlineIn, loadEcho, rawClient, serverConfig, type EchoRequest, type EchoResponse } from './support.js';

type Outcome = { ok: true; res: EchoResponse } | { ok: false; err: ServiceError };

const HealthClient = makeGenericClientConstructor(healthService, 'Health');

/** Stands in for authentication, which runs before quotas: the tenant comes from the API key. */
const keyToTenant: ServerInterceptor = (_descriptor, next) =>
  new ServerInterceptingCall(next, {
    start: (startNext) =>
      startNext({
        onReceiveMetadata: (metadata, mdNext) => {
          const key = metadata.get('authorization')[0];
          if (key === 'Bearer key-of-keyed') metadata.set(TENANT_METADATA_KEY, 'keyed');
          mdNext(metadata);
        },
      }),
  });

async function eventually(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('quotaInterceptor on a real gRPC server', () => {
  const logs = captureLogs('quota');
  const { definition } = loadEcho();
  const quotas = TenantQuotas.fromConfig({
    // Rates slow enough that no token comes back during a test, however slow the machine.
    tenants: { flood: { ratePerSecond: 0.5, burst: 2 }, busy: { maxConcurrency: 2 }, keyed: { ratePerSecond: 0.1, burst: 1 } },
  });
  const refusals: string[] = [];
  const gates = new Set<() => void>();
  let handled = 0;
  let server: GrpcServer;
  let client: ReturnType<typeof rawClient>;
  let address: string;

  beforeAll(async () => {
    server = createGrpcServer({
      config: serverConfig(),
      logger: logs.logger,
      services: [
        {
          definition,
          implementation: {
            Get: unary<EchoRequest, EchoResponse>(async (req, ctx) => {
              handled++;
              if (req.text === 'fail') throw new NotFoundError('no such thing');
              if (req.text === 'hold') {
                // Held until released by the test, cancelled, or past its deadline.
                await new Promise<void>((resolve) => {
                  gates.add(resolve);
                  ctx.signal.addEventListener('abort', () => resolve(), { once: true });
                });
                if (ctx.signal.aborted) throw ctx.signal.reason;
              }
              return { text: `echo:${req.text}`, attempt: 1, trace_id: '' };
            }),
          },
        },
      ],
      interceptors: [keyToTenant, quotaInterceptor(quotas, { logger: logs.logger, onRefused: (r) => refusals.push(`${r.tenant}:${r.limit}`) })],
    });
    ({ address } = await server.start());
    client = rawClient(address);
  });

  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  function get(text: string, tenant: string | undefined, deadlineMs = 5_000, apiKey?: string): { call: ClientUnaryCall; outcome: Promise<Outcome> } {
    const md = new Metadata();
    if (tenant !== undefined) md.set(TENANT_METADATA_KEY, tenant);
    if (apiKey !== undefined) md.set('authorization', `Bearer ${apiKey}`);
    let call!: ClientUnaryCall;
    const outcome = new Promise<Outcome>((resolve) => {
      call = client['Get']!({ text, count: 0 }, md, { deadline: deadlineIn(deadlineMs) }, (err: ServiceError | null, res?: EchoResponse) =>
        resolve(err ? { ok: false, err } : { ok: true, res: res! }),
      ) as ClientUnaryCall;
    });
    return { call, outcome };
  }

  it('refuses a tenant over its rate with RESOURCE_EXHAUSTED and a retry hint while another tenant is served', async () => {
    const handledBefore = handled;
    const flood = await Promise.all(Array.from({ length: 6 }, () => get('x', 'flood').outcome));
    const calm = await Promise.all(Array.from({ length: 20 }, () => get('x', 'calm').outcome));
    expect(calm.every((o) => o.ok)).toBe(true);
    expect(flood.filter((o) => o.ok)).toHaveLength(2);
    const refused = flood.filter((o): o is { ok: false; err: ServiceError } => !o.ok);
    expect(refused).toHaveLength(4);
    for (const { err } of refused) {
      expect(Status[err.code]).toBe('RESOURCE_EXHAUSTED');
      expect(err.details).toMatch(/^tenant "flood" is over its rate quota of 0.5 calls\/s \(burst 2\): retry in \d+ ms$/);
      const hint = Number(err.metadata.get(RETRY_AFTER_MS_KEY)[0]);
      expect(hint).toBeGreaterThan(0);
      expect(hint).toBeLessThanOrEqual(2_000);
    }
    // Refused calls never reached the handler.
    expect(handled - handledBefore).toBe(22);
    expect(refusals.filter((r) => r === 'flood:rate')).toHaveLength(4);
  });

  it('frees concurrency slots on every ending: OK, error, cancellation, deadline', async () => {
    // Errors and successes, one after the other: each must give its slot back.
    for (let i = 0; i < 5; i++) {
      expect((await get('fail', 'busy').outcome).ok).toBe(false);
      expect((await get('ok', 'busy').outcome).ok).toBe(true);
    }
    expect(quotas.inFlight('busy')).toBe(0);

    const cancelled = get('hold', 'busy');
    const timedOut = get('hold', 'busy', 300);
    await eventually(() => gates.size === 2);
    const third = await get('x', 'busy').outcome;
    expect(third.ok).toBe(false);
    if (!third.ok) {
      expect(Status[third.err.code]).toBe('RESOURCE_EXHAUSTED');
      expect(third.err.details).toContain('concurrency quota of 2 calls in progress');
      expect(third.err.metadata.get(RETRY_AFTER_MS_KEY)[0]).toBe('50');
    }
    cancelled.call.cancel();
    const c = await cancelled.outcome;
    expect(!c.ok && Status[c.err.code]).toBe('CANCELLED');
    const t = await timedOut.outcome;
    expect(!t.ok && Status[t.err.code]).toBe('DEADLINE_EXCEEDED');
    await eventually(() => quotas.inFlight('busy') === 0);
    gates.clear();

    // Both slots are usable again.
    const again = [get('hold', 'busy'), get('hold', 'busy')];
    await eventually(() => gates.size === 2);
    for (const release of gates) release();
    gates.clear();
    for (const o of await Promise.all(again.map((a) => a.outcome))) expect(o.ok).toBe(true);
    await eventually(() => quotas.inFlight('busy') === 0);
    expect(quotas.stats().inFlight).toBe(0);
  });

  it('counts the tenant an earlier interceptor (authentication) decided', async () => {
    const first = await get('x', undefined, 5_000, 'key-of-keyed').outcome;
    const second = await get('x', undefined, 5_000, 'key-of-keyed').outcome;
    expect(first.ok).toBe(true);
    expect(!second.ok && second.err.details).toContain('tenant "keyed" is over its rate quota of 0.1 calls/s');
  });

  it('lets calls without a tenant through to the handler and leaves health alone', async () => {
    const before = quotas.stats();
    const o = await get('anon', undefined).outcome;
    expect(o.ok && o.res.text).toBe('echo:anon');
    expect(quotas.stats().admitted).toBe(before.admitted);

    // Health with the saturated tenant's header still answers.
    const held = [get('hold', 'busy'), get('hold', 'busy')];
    await eventually(() => gates.size === 2);
    const health = new HealthClient(address, credentials.createInsecure());
    const md = new Metadata();
    md.set(TENANT_METADATA_KEY, 'busy');
    const status = await new Promise<string>((resolve, reject) =>
      (health as unknown as Record<string, (...a: unknown[]) => void>)['check']!({ service: '' }, md, (err: ServiceError | null, res?: { status: string }) =>
        err ? reject(err) : resolve(res!.status),
      ),
    );
    health.close();
    expect(status).toBe('SERVING');
    for (const release of gates) release();
    gates.clear();
    await Promise.all(held.map((h) => h.outcome));
  });
});

describe('quotaInterceptor holding refusals', () => {
  const logs = captureLogs('quota-hold');
  const { definition } = loadEcho();
  // One call a minute: after the burst every call is refused for the rest of the test.
  const quotas = TenantQuotas.fromConfig({ tenants: { slow: { ratePerSecond: 1 / 60, burst: 1 } } });
  const HOLD_MS = 150;
  let server: GrpcServer;
  let client: ReturnType<typeof rawClient>;

  beforeAll(async () => {
    server = createGrpcServer({
      config: serverConfig(),
      logger: logs.logger,
      services: [{ definition, implementation: { Get: unary<EchoRequest, EchoResponse>(async (req) => ({ text: `echo:${req.text}`, attempt: 1, trace_id: '' })) } }],
      interceptors: [quotaInterceptor(quotas, { holdRefusalsMs: HOLD_MS, maxHeldPerTenant: 2 })],
    });
    const { address } = await server.start();
    client = rawClient(address);
    const md = new Metadata();
    md.set(TENANT_METADATA_KEY, 'slow');
    // Spends the burst.
    await new Promise((resolve) => client['Get']!({ text: 'x', count: 0 }, md, { deadline: deadlineIn(5_000) }, resolve));
  });

  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  function timedGet(deadlineMs = 5_000): { call: ClientUnaryCall; done: Promise<{ err: ServiceError | null; ms: number }> } {
    const md = new Metadata();
    md.set(TENANT_METADATA_KEY, 'slow');
    const t0 = performance.now();
    let call!: ClientUnaryCall;
    const done = new Promise<{ err: ServiceError | null; ms: number }>((resolve) => {
      call = client['Get']!({ text: 'x', count: 0 }, md, { deadline: deadlineIn(deadlineMs) }, (err: ServiceError | null) => resolve({ err, ms: performance.now() - t0 })) as ClientUnaryCall;
    });
    return { call, done };
  }

  it('answers a refusal after the hold, with the retry hint shortened by as much', async () => {
    const { err, ms } = await timedGet().done;
    expect(err && Status[err.code]).toBe('RESOURCE_EXHAUSTED');
    expect(ms).toBeGreaterThanOrEqual(HOLD_MS - 5);
    const hint = Number(err!.metadata.get(RETRY_AFTER_MS_KEY)[0]);
    // About a minute until the next token, less the time held.
    expect(hint).toBeGreaterThan(50_000);
    expect(hint).toBeLessThanOrEqual(60_000 - HOLD_MS);
    // The message says the same as the metadata.
    expect(err!.details).toMatch(new RegExp(`: retry in ${hint} ms$`));
  });

  it('never holds a refusal past the call deadline: it is answered RESOURCE_EXHAUSTED, not DEADLINE_EXCEEDED', async () => {
    const { err, ms } = await timedGet(120).done;
    expect(err && Status[err.code]).toBe('RESOURCE_EXHAUSTED');
    expect(ms).toBeLessThan(120);
  });

  it('holds at most maxHeldPerTenant at once: the others are answered at once; a cancelled hold frees its place', async () => {
    const calls = Array.from({ length: 4 }, () => timedGet());
    const outcomes = await Promise.all(calls.map((c) => c.done));
    expect(outcomes.every((o) => o.err && Status[o.err.code] === 'RESOURCE_EXHAUSTED')).toBe(true);
    const times = outcomes.map((o) => o.ms).sort((a, b) => a - b);
    expect(times[1]!).toBeLessThan(HOLD_MS / 2);
    expect(times[2]!).toBeGreaterThanOrEqual(HOLD_MS - 5);

    const a = timedGet();
    const b = timedGet();
    await new Promise((r) => setTimeout(r, 30));
    a.call.cancel();
    expect(Status[(await a.done).err!.code]).toBe('CANCELLED');
    // a's place is free again: this one is held, not answered at once.
    const c = await timedGet().done;
    expect(c.ms).toBeGreaterThanOrEqual(HOLD_MS - 5);
    await b.done;
  });
});
