import { status as Status } from '@grpc/grpc-js';
import { AiMassError, CancelledError, type StatusName, type UnavailableError } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, the first included; 1 turns retries off. Default 4. */
  maxAttempts?: number | undefined;
  /** Wait before the second attempt. Default 100 ms. */
  initialBackoffMs?: number | undefined;
  /** Longest wait between attempts. Default 2000 ms. */
  maxBackoffMs?: number | undefined;
  /** Default 2. */
  backoffMultiplier?: number | undefined;
  /**
   * Statuses worth another attempt. Default `['UNAVAILABLE']`: the service could not be reached
   * or is restarting. Other codes would repeat the same answer (INVALID_ARGUMENT) or make an
   * overload worse (RESOURCE_EXHAUSTED), so they are thrown at once.
   */
  retryableCodes?: readonly StatusName[] | undefined;
}

export interface ResolvedRetry {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  backoffMultiplier: number;
  retryableCodes: ReadonlySet<StatusName>;
}

export const DEFAULT_RETRY: ResolvedRetry = Object.freeze({
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2_000,
  backoffMultiplier: 2,
  retryableCodes: new Set<StatusName>(['UNAVAILABLE']),
});

export function resolveRetry(options: RetryOptions | false | undefined): ResolvedRetry {
  if (options === false) return { ...DEFAULT_RETRY, maxAttempts: 1 };
  const r = {
    maxAttempts: options?.maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    initialBackoffMs: options?.initialBackoffMs ?? DEFAULT_RETRY.initialBackoffMs,
    maxBackoffMs: options?.maxBackoffMs ?? DEFAULT_RETRY.maxBackoffMs,
    backoffMultiplier: options?.backoffMultiplier ?? DEFAULT_RETRY.backoffMultiplier,
    retryableCodes: options?.retryableCodes ? new Set(options.retryableCodes) : DEFAULT_RETRY.retryableCodes,
  };
  if (!Number.isInteger(r.maxAttempts) || r.maxAttempts < 1) throw new RangeError(`retry.maxAttempts must be an integer >= 1, got ${r.maxAttempts}`);
  if (!(r.initialBackoffMs > 0) || !(r.maxBackoffMs > 0)) throw new RangeError('retry.initialBackoffMs and retry.maxBackoffMs must be > 0');
  if (!(r.backoffMultiplier >= 1)) throw new RangeError(`retry.backoffMultiplier must be >= 1, got ${r.backoffMultiplier}`);
  for (const code of r.retryableCodes) {
    if (!(code in Status)) throw new RangeError(`retry.retryableCodes: "${code}" is not a gRPC status name`);
  }
  return r;
}

/**
 * Wait before attempt `attempt + 1` (attempt counts from 1): exponential, capped, with ±20%
 * jitter so clients that failed together do not come back together. A server's own
 * `retry-after-ms` wins over the schedule.
 */
export function backoffMs(retry: ResolvedRetry, attempt: number, error: AiMassError, random: () => number = Math.random): number {
  const pushback = (error as Partial<UnavailableError>).retryAfterMs;
  if (pushback !== undefined) return pushback;
  const base = Math.min(retry.maxBackoffMs, retry.initialBackoffMs * retry.backoffMultiplier ** (attempt - 1));
  return base * (0.8 + 0.4 * random());
}

export interface RetryInfo {
  /** RPC name, e.g. `Predict`. */
  method: string;
  /** The attempt that failed (1 = the first). */
  attempt: number;
  delayMs: number;
  error: AiMassError;
}

export interface AttemptPolicy {
  retry: ResolvedRetry;
  /** Absolute deadline (ms since the epoch) of the whole call, all attempts included. */
  deadline: number;
  signal?: AbortSignal | undefined;
  method: string;
  onRetry?: ((info: RetryInfo) => void) | undefined;
  random?: () => number;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function cancelled(): CancelledError {
  return new CancelledError('CANCELLED: cancelled by the caller', { grpcCode: Status.CANCELLED, details: 'cancelled by the caller' });
}

/**
 * Runs `attempt` until it succeeds, fails with a code not worth retrying, runs out of attempts,
 * or the next wait would end after the call's deadline (then the last error is thrown: the
 * caller learns why it failed, not merely that time ran out). Only for calls safe to repeat.
 */
export async function withRetry<T>(policy: AttemptPolicy, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof AiMassError)) throw err;
      if (n >= policy.retry.maxAttempts || !policy.retry.retryableCodes.has(err.code)) throw err;
      const delayMs = backoffMs(policy.retry, n, err, policy.random);
      if (Date.now() + delayMs >= policy.deadline) throw err;
      policy.onRetry?.({ method: policy.method, attempt: n, delayMs, error: err });
      try {
        await sleep(delayMs, policy.signal);
      } catch {
        throw cancelled();
      }
    }
  }
}
