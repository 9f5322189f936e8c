import { randomBytes } from 'node:crypto';
import { Metadata, status as Status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  AlreadyExistsError,
  CancelledError,
  ConflictError,
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  type DomainErrorKind,
} from './domain-errors.js';

/** Metadata key carrying `retryAfterMs` (decimal milliseconds). */
export const RETRY_AFTER_MS_KEY = 'retry-after-ms';
/** Metadata key carrying the `field` of an InvalidArgumentError. */
export const INVALID_FIELD_KEY = 'invalid-argument-field';
/** Metadata key carrying the reference of an internal error, also found in the server's log. */
export const ERROR_REF_KEY = 'error-ref';
// grpc-js's built-in retry honours this on retryable codes: a server that says "come back in N ms"
// is obeyed by clients that retry (UNAVAILABLE), instead of their own backoff.
const GRPC_PUSHBACK_KEY = 'grpc-retry-pushback-ms';

/**
 * The longest status message sent, in UTF-16 code units. Messages quote what the caller sent (an
 * unknown name, a parameter key), and the message travels percent-encoded in the `grpc-message`
 * trailer: past an HPACK-encoded header block of 64 KiB (about 14,000 'é' or 105,000 'a') the
 * server's HTTP/2 session fails to send it and the caller's connection dies with GOAWAY
 * COMPRESSION_ERROR, taking every other call on it along. 2,000 units percent-encode to at most
 * 12,000 characters.
 */
export const MAX_STATUS_DETAILS_CHARS = 2_000;
/** The longest `invalid-argument-field` value sent (a field path can hold a caller's map key). */
export const MAX_FIELD_METADATA_CHARS = 200;

// A UTF-16 surrogate without its other half.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A status message grpc-js can send: grpc-js percent-encodes it with `encodeURI`, which throws on a
 * lone surrogate (a message quoting a caller's string can hold one), and that throw escapes as an
 * unhandled rejection, which ends the process. Lone surrogates become U+FFFD; then bounded.
 */
function sendableDetails(text: string): string {
  return bounded(text.replace(LONE_SURROGATE, '\ufffd'), MAX_STATUS_DETAILS_CHARS);
}

/** `text` cut to at most `max` code units (plus an ASCII note of how much was cut), never inside a surrogate pair. */
function bounded(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}... (${text.length - end} more characters cut)`;
}

/**
 * A metadata-safe copy of a field path, which can quote a caller's map key: grpc-js throws on a
 * text metadata value that is not printable ASCII, and HTTP/2 peers refuse a header value with
 * whitespace at either end (RFC 9113), so both are escaped as `\\u{…}`.
 */
function fieldMetadataValue(field: string): string {
  const escape = (c: string) => `\\u{${c.codePointAt(0)!.toString(16)}}`;
  const ascii = field.replace(/[^ -~]/gu, escape).replace(/^ +| +$/g, (spaces) => [...spaces].map(escape).join(''));
  return bounded(ascii, MAX_FIELD_METADATA_CHARS);
}

const CODE_BY_KIND: Readonly<Record<DomainErrorKind, Status>> = {
  cancelled: Status.CANCELLED,
  invalid_argument: Status.INVALID_ARGUMENT,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  not_found: Status.NOT_FOUND,
  already_exists: Status.ALREADY_EXISTS,
  permission_denied: Status.PERMISSION_DENIED,
  resource_exhausted: Status.RESOURCE_EXHAUSTED,
  failed_precondition: Status.FAILED_PRECONDITION,
  conflict: Status.ABORTED,
  unimplemented: Status.UNIMPLEMENTED,
  internal: Status.INTERNAL,
  unavailable: Status.UNAVAILABLE,
  unauthenticated: Status.UNAUTHENTICATED,
};

export interface GrpcStatus {
  code: Status;
  details: string;
  metadata: Metadata;
}

export interface ToGrpcStatusOptions {
  /** Where internal errors are logged (with stack and a reference the caller also sees). */
  logger?: Logger | undefined;
  /** The RPC, for the log line (e.g. `/aimass.fusion.v1.Fusion/Predict`). */
  method?: string | undefined;
}

/**
 * The one mapping from a thrown value to the status a server sends. Domain errors keep their
 * message; anything else (a bug, a driver error, a raw gRPC error from a downstream call) becomes
 * INTERNAL "internal error (ref …)" and is logged with its stack under the same reference, so
 * nothing about the server's internals reaches the caller. To pass a downstream failure through
 * on purpose, convert it with `fromGrpcError` and rethrow.
 */
export function toGrpcStatus(err: unknown, options: ToGrpcStatusOptions = {}): GrpcStatus {
  const metadata = new Metadata();
  if (err instanceof DomainError && !(err instanceof InternalError)) {
    if (err instanceof InvalidArgumentError && err.field !== undefined) metadata.set(INVALID_FIELD_KEY, fieldMetadataValue(err.field));
    if ((err instanceof ResourceExhaustedError || err instanceof UnavailableError) && err.retryAfterMs !== undefined) {
      const ms = String(Math.max(0, Math.round(err.retryAfterMs)));
      metadata.set(RETRY_AFTER_MS_KEY, ms);
      if (err instanceof UnavailableError) metadata.set(GRPC_PUSHBACK_KEY, ms);
    }
    return { code: CODE_BY_KIND[err.kind], details: sendableDetails(err.message), metadata };
  }
  const ref = randomBytes(6).toString('hex');
  metadata.set(ERROR_REF_KEY, ref);
  options.logger?.error({ err, errorRef: ref, rpc: options.method }, 'internal error while handling a call');
  return { code: Status.INTERNAL, details: `internal error (ref ${ref})`, metadata };
}

interface StatusLike {
  code: number;
  details?: string | undefined;
  message?: string | undefined;
  metadata?: Metadata | undefined;
}

function isStatusLike(err: unknown): err is StatusLike {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number';
}

function firstString(metadata: Metadata | undefined, key: string): string | undefined {
  const value = metadata?.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The reverse mapping, for clients: a grpc-js `ServiceError` (or any `{code, details, metadata}`)
 * becomes the domain error a caller can branch on. UNKNOWN, INTERNAL and DATA_LOSS become
 * InternalError; OUT_OF_RANGE becomes InvalidArgumentError. The original error is the `cause`.
 * Values that are not gRPC errors come back as InternalError wrapping them.
 */
export function fromGrpcError(err: unknown): DomainError {
  if (err instanceof DomainError) return err;
  if (!isStatusLike(err)) {
    return new InternalError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  const details = err.details ?? err.message ?? '';
  const options = { cause: err };
  const retryAfter = firstString(err.metadata, RETRY_AFTER_MS_KEY);
  const retryAfterMs = retryAfter !== undefined && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  switch (err.code as Status) {
    case Status.CANCELLED:
      return new CancelledError(details, options);
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
      return new InvalidArgumentError(details, { ...options, field: firstString(err.metadata, INVALID_FIELD_KEY) });
    case Status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(details, options);
    case Status.NOT_FOUND:
      return new NotFoundError(details, options);
    case Status.ALREADY_EXISTS:
      return new AlreadyExistsError(details, options);
    case Status.PERMISSION_DENIED:
      return new PermissionDeniedError(details, options);
    case Status.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(details, { ...options, retryAfterMs });
    case Status.FAILED_PRECONDITION:
      return new FailedPreconditionError(details, options);
    case Status.ABORTED:
      return new ConflictError(details, options);
    case Status.UNIMPLEMENTED:
      return new UnimplementedError(details, options);
    case Status.UNAVAILABLE:
      return new UnavailableError(details, { ...options, retryAfterMs });
    case Status.UNAUTHENTICATED:
      return new UnauthenticatedError(details, options);
    default:
      return new InternalError(details, options);
  }
}
