import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DeadlineExceededError as ServerDeadlineExceeded,
  FailedPreconditionError as ServerFailedPrecondition,
  InvalidArgumentError as ServerInvalidArgument,
  NotFoundError as ServerNotFound,
  PermissionDeniedError as ServerPermissionDenied,
  ResourceExhaustedError as ServerResourceExhausted,
  UnauthenticatedError as ServerUnauthenticated,
  UnavailableError as ServerUnavailable,
} from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { freePort } from '@aimass/testing';
import {
  AiMassClient,
  AiMassError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  type ItemResult,
  type RetryInfo,
} from '../src/index.js';
import { prediction, startScriptedServer, type ScriptedServer } from './scripted-server.js';

let server: ScriptedServer;
const clients: AiMassClient[] = [];

function client(options: Partial<ConstructorParameters<typeof AiMassClient>[0]> = {}): AiMassClient {
  const c = new AiMassClient({ address: server.address, tenant: 'acme', retry: { initialBackoffMs: 5, maxBackoffMs: 20 }, ...options });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startScriptedServer();
});
afterAll(async () => {
  await server.stop();
});
afterEach(() => {
  server.calls.length = 0;
  server.script.predict.length = 0;
  server.script.predictBatch.length = 0;
  server.script.feedback.length = 0;
  for (const c of clients.splice(0)) c.close();
});

describe('AiMassClient metadata and deadlines', () => {
  it('sends the tenant, the API key as a bearer token, its user agent and a deadline on every call', async () => {
    const before = Date.now();
    await client({ apiKey: 'k-123', defaultDeadlineMs: 3_000 }).predict('u1', 'hello');
    const [call] = server.calls;
    expect(call?.metadata['x-aimass-tenant']).toBe('acme');
    expect(call?.metadata.authorization).toBe('Bearer k-123');
    expect(call?.metadata['user-agent']).toMatch(/^aimass-sdk-js\/0\.1\.0/);
    // grpc-js sends the deadline as a timeout; allow for its rounding and the time in flight.
    expect(call!.deadline).toBeGreaterThan(before + 2_500);
    expect(call!.deadline).toBeLessThanOrEqual(Date.now() + 3_100);
  });

  it('sends no authorization without an API key, and extra metadata cannot override the tenant', async () => {
    await client().predict('u1', 'hello', { metadata: { 'x-aimass-tenant': 'other', 'x-request-id': 'r-9', authorization: 'Bearer stolen' } });
    const [call] = server.calls;
    expect(call?.metadata['x-aimass-tenant']).toBe('acme');
    expect(call?.metadata['x-request-id']).toBe('r-9');
    expect(call?.metadata.authorization).toBeUndefined();
  });

  it('uses the per-call deadline, relative or absolute', async () => {
    const c = client({ defaultDeadlineMs: 30_000 });
    await c.predict('u1', 'x', { deadlineMs: 1_000 });
    const absolute = Date.now() + 7_000;
    await c.feedback({ userId: 'u1', predictionId: 'p', label: 'ham' }, { deadline: absolute });
    expect(server.calls[0]!.deadline - server.calls[0]!.receivedAt).toBeLessThanOrEqual(1_000);
    expect(Math.abs(server.calls[1]!.deadline - absolute)).toBeLessThan(100);
  });

  it('refuses an invalid tenant or address before any call', () => {
    expect(() => new AiMassClient({ address: server.address, tenant: 'Acme Corp' })).toThrow(/invalid tenant "Acme Corp"/);
    expect(() => new AiMassClient({ address: '', tenant: 'acme' })).toThrow(/address is required/);
  });
});

describe('AiMassClient requests and results', () => {
  it('maps a text input and options to the request, and the answer to a typed result', async () => {
    const result = await client().predict('u1', 'cheap pills', { strategy: 'personal', topK: 1, includeComponents: true, generalModel: { version: '3' } });
    const request = server.calls[0]!.request as v1.PredictRequest;
    expect(request.userId).toBe('u1');
    expect(request.input?.kind).toEqual({ $case: 'text', value: 'cheap pills' });
    expect(request.options).toMatchObject({ strategy: v1.FusionStrategy.FUSION_STRATEGY_PERSONAL_ONLY, topK: 1, includeComponents: true, generalModel: { name: '', version: '3' } });
    expect(result.label).toBe('spam');
    expect(result.probabilities.spam).toBeCloseTo(0.9, 6);
    expect(result.probabilities.ham).toBeCloseTo(0.1, 6);
    expect(result.probabilityList.map((p) => p.label)).toEqual(['ham', 'spam']);
    expect(result.provenance.requestedStrategy).toBe('stacking');
    expect(result.provenance.appliedStrategy).toBe('general');
    expect(result.provenance.fallbacks).toEqual([{ reason: 'no_personal_model', role: 'personal', detail: 'user has no personal model yet' }]);
    expect(result.provenance.models[0]).toEqual({ name: 'general', version: '1', role: 'general', weight: 1 });
    expect(result.provenance.timingsMs.general_model).toBeCloseTo(2.5, 6);
    expect(result.provenance.timingsMs.total).toBeCloseTo(1250, 6);
  });

  it('sends a mail as subject, body and lower-cased headers', async () => {
    await client().predict('u1', { subject: 'Hi', body: 'See you', headers: { From: 'a@example.com', 'List-Id': '<x.example.com>' } });
    const request = server.calls[0]!.request as v1.PredictRequest;
    expect(request.input?.kind).toEqual({ $case: 'mail', value: { subject: 'Hi', body: 'See you', headers: { from: 'a@example.com', 'list-id': '<x.example.com>' } } });
  });

  it('returns batch results in order, with failed items as typed errors', async () => {
    const results = await client().predictBatch([
      { userId: 'u1', input: 'one' },
      { userId: 'u2', input: '', itemId: 'empty' },
    ]);
    expect(results.map((r) => r.itemId)).toEqual(['0', 'empty']);
    expect(results[0]?.ok && results[0].prediction.label).toBe('ham');
    const failed = results[1]!;
    expect(failed.ok).toBe(false);
    if (!failed.ok) {
      expect(failed.error).toBeInstanceOf(InvalidArgumentError);
      expect(failed.error.details).toBe('input is empty');
    }
  });

  it('streams items and matches out-of-order results by item id', async () => {
    const c = client();
    const items = [
      { itemId: 'a', userId: 'spammy', input: 'x' },
      { itemId: 'b', userId: 'u', input: 'y' },
      { itemId: 'c', userId: 'u', input: '' },
    ];
    const results: ItemResult[] = [];
    for await (const r of c.predictEach(items)) results.push(r);
    expect(results.map((r) => r.itemId)).toEqual(['b', 'a', 'c']);
    const byId = Object.fromEntries(results.map((r) => [r.itemId, r]));
    expect(byId.a?.ok && byId.a.prediction.label).toBe('spam');
    expect(byId.c?.ok).toBe(false);
    expect(server.calls[0]?.metadata['x-aimass-tenant']).toBe('acme');
    expect(Number.isFinite(server.calls[0]?.deadline)).toBe(true);
  });

  it('throws a failure of the stream itself as a typed error', async () => {
    const stream = client().predictStream();
    stream.send({ itemId: '1', userId: 'boom', input: 'x' });
    stream.end();
    const read = async () => {
      for await (const _ of stream) {
        // nothing arrives before the failure
      }
    };
    await expect(read()).rejects.toBeInstanceOf(ResourceExhaustedError);
  });

  it('generates an idempotency key for feedback and returns it; yours is sent as is', async () => {
    const c = client();
    const generated = await c.feedback({ userId: 'u1', predictionId: 'p-1', label: 'spam', occurredAt: new Date('2024-05-01T10:00:00Z') });
    expect(generated.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    const sent = server.calls[0]!.request as v1.FeedbackRequest;
    expect(sent.idempotencyKey).toBe(generated.idempotencyKey);
    expect(sent.target).toEqual({ $case: 'predictionId', value: 'p-1' });
    expect(sent.occurredAt?.toISOString()).toBe('2024-05-01T10:00:00.000Z');
    const own = await c.feedback({ userId: 'u1', input: 'some text', label: 'ham', idempotencyKey: 'mine-1' });
    expect(own.idempotencyKey).toBe('mine-1');
    expect((server.calls[1]!.request as v1.FeedbackRequest).target).toEqual({ $case: 'input', value: { kind: { $case: 'text', value: 'some text' } } });
  });
});

describe('AiMassClient retries', () => {
  it('retries UNAVAILABLE with backoff and then succeeds', async () => {
    server.script.predict.push({ fail: new ServerUnavailable('restarting') }, { fail: new ServerUnavailable('restarting') });
    const retries: RetryInfo[] = [];
    const result = await client({ onRetry: (info) => retries.push(info) }).predict('u1', 'x');
    expect(result.label).toBe('spam');
    expect(server.calls).toHaveLength(3);
    expect(retries.map((r) => [r.method, r.attempt, r.error.code])).toEqual([
      ['Predict', 1, 'UNAVAILABLE'],
      ['Predict', 2, 'UNAVAILABLE'],
    ]);
  });

  it('does not retry INVALID_ARGUMENT and exposes the field', async () => {
    server.script.predict.push({ fail: new ServerInvalidArgument('input.text is longer than 65536 characters', { field: 'input.text' }) });
    const error = await client().predict('u1', 'x').catch((e: unknown) => e);
    expect(server.calls).toHaveLength(1);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('input.text');
    expect((error as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
    expect((error as Error).message).toBe('INVALID_ARGUMENT: input.text is longer than 65536 characters (field input.text)');
  });

  it('retries feedback with the same idempotency key on every attempt', async () => {
    server.script.feedback.push({ fail: new ServerUnavailable('draining') }, { reply: { accepted: true, eventId: 'e-7', duplicate: true } });
    const result = await client().feedback({ userId: 'u1', predictionId: 'p', label: 'ham' });
    const keys = server.calls.map((c) => (c.request as v1.FeedbackRequest).idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(result).toEqual({ accepted: true, eventId: 'e-7', duplicate: true, idempotencyKey: keys[0] });
  });

  it('gives up at the last attempt and throws the last UNAVAILABLE', async () => {
    for (let i = 0; i < 5; i++) server.script.predictBatch.push({ fail: new ServerUnavailable(`down ${i}`) });
    const error = await client({ retry: { maxAttempts: 3, initialBackoffMs: 1 } }).predictBatch([{ userId: 'u', input: 'x' }]).catch((e: unknown) => e);
    expect(server.calls).toHaveLength(3);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).details).toBe('down 2');
  });

  it('does not wait past the deadline: a server pushback longer than the time left ends the call', async () => {
    server.script.predict.push({ fail: new ServerUnavailable('overloaded', { retryAfterMs: 10_000 }) });
    const started = Date.now();
    const error = await client().predict('u1', 'x', { deadlineMs: 2_000 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(server.calls).toHaveLength(1);
    expect((error as UnavailableError).retryAfterMs).toBe(10_000);
  });

  it('is not retried when retries are off', async () => {
    server.script.predict.push({ fail: new ServerUnavailable('down') });
    await expect(client({ retry: false }).predict('u1', 'x')).rejects.toBeInstanceOf(UnavailableError);
    expect(server.calls).toHaveLength(1);
  });

  it('reports an unreachable address as UNAVAILABLE after its retries', async () => {
    const port = await freePort();
    const retries: RetryInfo[] = [];
    const c = new AiMassClient({ address: `127.0.0.1:${port}`, tenant: 'acme', retry: { maxAttempts: 2, initialBackoffMs: 5 }, onRetry: (r) => retries.push(r) });
    clients.push(c);
    await expect(c.predict('u1', 'x')).rejects.toBeInstanceOf(UnavailableError);
    expect(retries).toHaveLength(1);
  });
});

describe('AiMassClient errors', () => {
  it.each([
    [new ServerNotFound('no prediction p-404 (it may have expired)'), NotFoundError, 'NOT_FOUND'],
    [new ServerFailedPrecondition('the user has no consent'), FailedPreconditionError, 'FAILED_PRECONDITION'],
    [new ServerUnauthenticated('unknown API key'), UnauthenticatedError, 'UNAUTHENTICATED'],
    [new ServerPermissionDenied('key lacks the feedback scope'), PermissionDeniedError, 'PERMISSION_DENIED'],
    [new ServerDeadlineExceeded('no model answered in time'), DeadlineExceededError, 'DEADLINE_EXCEEDED'],
  ] as const)('maps %s to its class', async (serverError, ErrorClass, code) => {
    server.script.feedback.push({ fail: serverError });
    const error = await client().feedback({ userId: 'u', predictionId: 'p', label: 'ham' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error).toBeInstanceOf(AiMassError);
    expect((error as AiMassError).code).toBe(code);
    expect((error as AiMassError).details).toBe(serverError.message);
    expect(server.calls).toHaveLength(1);
  });

  it('exposes retry-after on RESOURCE_EXHAUSTED and does not retry it', async () => {
    server.script.predict.push({ fail: new ServerResourceExhausted('quota of 100 predictions/s used up', { retryAfterMs: 1500 }) });
    const error = await client().predict('u1', 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceExhaustedError);
    expect((error as ResourceExhaustedError).retryAfterMs).toBe(1500);
    expect(server.calls).toHaveLength(1);
  });

  it('exposes the reference of an internal error', async () => {
    server.script.predict.push({ fail: new Error('bug: undefined is not a function') });
    const error = (await client().predict('u1', 'x').catch((e: unknown) => e)) as AiMassError;
    expect(error.code).toBe('INTERNAL');
    expect(error.errorRef).toMatch(/^[0-9a-f]{12}$/);
    expect(error.details).toContain(error.errorRef);
    expect(error.details).not.toContain('undefined is not a function');
  });

  it('ends a call that outlives its deadline with DEADLINE_EXCEEDED', async () => {
    server.script.predict.push({ delayMs: 1_000, then: { reply: { prediction: prediction('ham', 0.1) } } });
    await expect(client().predict('u1', 'x', { deadlineMs: 150 })).rejects.toBeInstanceOf(DeadlineExceededError);
  });

  it('cancels a call when its signal aborts', async () => {
    server.script.predict.push({ delayMs: 1_000, then: { reply: { prediction: prediction('ham', 0.1) } } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(client().predict('u1', 'x', { signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
  });
});
