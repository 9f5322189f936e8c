import { describe, expect, it } from 'vitest';
import { status as Status } from '@grpc/grpc-js';
import { UnavailableError, toAiMassError } from './errors.js';
import { DEFAULT_RETRY, backoffMs, resolveRetry, withRetry } from './retry.js';

const unavailable = (retryAfterMs?: number) =>
  new UnavailableError('UNAVAILABLE: down', { grpcCode: Status.UNAVAILABLE, details: 'down', retryAfterMs });

describe('backoffMs', () => {
  it('grows exponentially from the initial backoff up to the cap, with ±20% jitter', () => {
    const retry = resolveRetry({ initialBackoffMs: 100, maxBackoffMs: 1_000, backoffMultiplier: 2 });
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(retry, n, unavailable(), mid))).toEqual([100, 200, 400, 800, 1_000]);
    expect(backoffMs(retry, 1, unavailable(), () => 0)).toBeCloseTo(80, 9);
    expect(backoffMs(retry, 1, unavailable(), () => 0.999999)).toBeCloseTo(120, 3);
  });

  it("follows the server's retry-after instead of the schedule", () => {
    expect(backoffMs(DEFAULT_RETRY, 1, unavailable(750))).toBe(750);
  });
});

describe('resolveRetry', () => {
  it('has one attempt when retries are off, and rejects nonsense with the setting named', () => {
    expect(resolveRetry(false).maxAttempts).toBe(1);
    expect(() => resolveRetry({ maxAttempts: 0 })).toThrow(/retry.maxAttempts must be an integer >= 1/);
    expect(() => resolveRetry({ retryableCodes: ['NOT_A_CODE' as 'OK'] })).toThrow(/"NOT_A_CODE" is not a gRPC status name/);
  });
});

describe('withRetry', () => {
  it('throws errors that are not AiMassErrors at once', async () => {
    let calls = 0;
    const attempt = async () => {
      calls++;
      throw new TypeError('a bug in the caller');
    };
    await expect(withRetry({ retry: DEFAULT_RETRY, deadline: Date.now() + 5_000, method: 'Predict' }, attempt)).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(1);
  });

  it('retries only the configured codes', async () => {
    let calls = 0;
    const retry = resolveRetry({ retryableCodes: ['RESOURCE_EXHAUSTED'], initialBackoffMs: 1 });
    const attempt = async () => {
      calls++;
      throw calls === 1 ? toAiMassError({ code: Status.RESOURCE_EXHAUSTED, details: 'busy' }) : unavailable();
    };
    await expect(withRetry({ retry, deadline: Date.now() + 5_000, method: 'Predict' }, attempt)).rejects.toBeInstanceOf(UnavailableError);
    expect(calls).toBe(2);
  });
});
