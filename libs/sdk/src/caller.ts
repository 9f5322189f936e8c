import {
  Metadata,
  status as Status,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { CancelledError, toAiMassError } from './errors.js';
import { resolveRetry, withRetry, type ResolvedRetry, type RetryInfo, type RetryOptions } from './retry.js';

export const SDK_VERSION = '0.1.0';
/** Metadata key of the tenant a call is made for. */
export const TENANT_METADATA_KEY = 'x-aimass-tenant';
// The servers' rule (libs/platform tenancy): one NATS subject token, so it can scope every key.
const TENANT_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** How a client reaches a service and whom it calls as: what every AI Mass client takes. */
export interface ConnectionOptions {
  /** `host:port` of the service (any grpc-js target works, e.g. `dns:///fusion:50051`). */
  address: string;
  /** The tenant every call is made for: 1-63 lower-case letters, digits and dashes. */
  tenant: string;
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string | undefined;
  /** TLS and friends (`credentials.createSsl(...)`); plaintext when omitted. */
  credentials?: ChannelCredentials | undefined;
  /** Deadline of a unary call that sets none, all retries included. Default 5000 ms. */
  defaultDeadlineMs?: number | undefined;
  /** Retries of the calls safe to repeat; `false` turns them off. */
  retry?: RetryOptions | false | undefined;
  /** Told about each retry before its wait, e.g. to log it. */
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** Extra grpc-js channel options (keepalive, message size limits, …). */
  channelOptions?: ChannelOptions | undefined;
}

/** Per-call settings. */
export interface CallOptions {
  /** Time the call may take, retries included; the client's default when unset. */
  deadlineMs?: number | undefined;
  /** An absolute deadline instead (wins over `deadlineMs`), e.g. the one of the request you are serving. */
  deadline?: Date | number | undefined;
  /** Aborting it cancels the call (CancelledError). */
  signal?: AbortSignal | undefined;
  /** Extra metadata (e.g. a request id); cannot replace the tenant or the API key. */
  metadata?: Readonly<Record<string, string>> | undefined;
}

export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<GrpcCallOptions>,
  callback: (err: ServiceError | null, response?: Res) => void,
) => ClientUnaryCall;

export function cancelledError(): CancelledError {
  return new CancelledError('CANCELLED: cancelled by the caller', { grpcCode: Status.CANCELLED, details: 'cancelled by the caller' });
}

export function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}

/** The channel options every client sends (its user agent first, the caller's own after). */
export function channelOptionsOf(options: ConnectionOptions): ChannelOptions {
  return { 'grpc.primary_user_agent': `aimass-sdk-js/${SDK_VERSION}`, ...options.channelOptions };
}

/**
 * What every client shares: the checked connection options, the metadata (tenant and key set last,
 * so extra metadata cannot redirect a call), deadlines and the retry of unary calls.
 */
export class UnaryCaller {
  readonly tenant: string;
  readonly #apiKey: string | undefined;
  readonly defaultDeadlineMs: number;
  readonly #retry: ResolvedRetry;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;

  /**
   * `tenantOptional`: calls may go without a tenant header (the tenant admin API, where the
   * operator names tenants in the requests and an API key's own tenant is the server's to decide).
   */
  constructor(options: ConnectionOptions, settings: { tenantOptional?: boolean } = {}) {
    if (typeof options.address !== 'string' || options.address === '') throw new TypeError('address is required, e.g. "127.0.0.1:50053"');
    const noTenant = settings.tenantOptional === true && (options.tenant === undefined || options.tenant === '');
    if (!noTenant && !TENANT_ID_PATTERN.test(options.tenant ?? '')) {
      throw new TypeError(
        `invalid tenant ${JSON.stringify(String(options.tenant).slice(0, 80))}: use 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit`,
      );
    }
    if (options.apiKey !== undefined && (options.apiKey === '' || /[\r\n]/.test(options.apiKey))) {
      throw new TypeError('apiKey must be a non-empty single-line string');
    }
    this.tenant = noTenant ? '' : options.tenant;
    this.#apiKey = options.apiKey;
    this.defaultDeadlineMs = positiveMs('defaultDeadlineMs', options.defaultDeadlineMs, 5_000);
    this.#retry = resolveRetry(options.retry);
    this.#onRetry = options.onRetry;
  }

  deadlineOf(options: CallOptions, fallbackMs: number = this.defaultDeadlineMs): number {
    if (options.deadline !== undefined) return options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
    return Date.now() + positiveMs('deadlineMs', options.deadlineMs, fallbackMs);
  }

  metadata(extra: Readonly<Record<string, string>> | undefined): Metadata {
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(extra ?? {})) metadata.set(key, value);
    if (this.tenant !== '') metadata.set(TENANT_METADATA_KEY, this.tenant);
    else metadata.remove(TENANT_METADATA_KEY);
    if (this.#apiKey !== undefined) metadata.set('authorization', `Bearer ${this.#apiKey}`);
    else metadata.remove('authorization');
    return metadata;
  }

  /**
   * One unary call. An idempotent one is retried on UNAVAILABLE within its deadline (as the
   * client's `retry` allows); any other is tried once, since a lost answer may hide a done effect.
   */
  unary<C, Req, Res>(client: C, rpc: string, method: UnaryMethod<Req, Res>, request: Req, options: CallOptions, idempotent = true): Promise<Res> {
    const deadline = this.deadlineOf(options);
    const metadata = this.metadata(options.metadata);
    const { signal } = options;
    const attempt = () =>
      new Promise<Res>((resolve, reject) => {
        if (signal?.aborted) {
          reject(cancelledError());
          return;
        }
        const onAbort = () => call.cancel();
        const call = method.call(client, request, metadata, { deadline }, (err, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(toAiMassError(err));
          else resolve(response as Res);
        });
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    if (!idempotent) return attempt();
    return withRetry({ retry: this.#retry, deadline, signal, method: rpc, onRetry: this.#onRetry }, attempt);
  }
}
