import { status as Status, type Metadata } from '@grpc/grpc-js';

/**
 * Trailer keys the AI Mass servers set on errors (libs/platform's grpc-mapping). Restated here
 * because the SDK must not depend on the platform: external backends install only this package.
 */
export const RETRY_AFTER_MS_KEY = 'retry-after-ms';
export const INVALID_FIELD_KEY = 'invalid-argument-field';
export const ERROR_REF_KEY = 'error-ref';

/** A gRPC status code by name, e.g. `UNAVAILABLE`. */
export type StatusName = keyof typeof Status;

export interface AiMassErrorOptions extends ErrorOptions {
  /** Numeric gRPC status code. */
  grpcCode: number;
  /** The server's message (the status details), meant for the caller. */
  details: string;
  /** The server's reference for an internal error; quote it to the operator, it is in their log. */
  errorRef?: string | undefined;
  /** Trailing metadata the server sent with the status, as plain strings. */
  metadata?: Readonly<Record<string, string>> | undefined;
}

/**
 * Every failure of an AiMassClient call. Branch with `instanceof` on the subclasses, or on `code`
 * (the gRPC status name) for statuses without one. `details` is the server's own message.
 */
export class AiMassError extends Error {
  /** gRPC status name, e.g. `INVALID_ARGUMENT`. */
  readonly code: StatusName;
  readonly grpcCode: number;
  readonly details: string;
  readonly errorRef: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;

  constructor(message: string, options: AiMassErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.grpcCode = options.grpcCode;
    this.code = statusName(options.grpcCode);
    this.details = options.details;
    this.errorRef = options.errorRef;
    this.metadata = options.metadata ?? {};
  }
}

export class InvalidArgumentError extends AiMassError {
  /** The request field at fault (dotted proto path, e.g. `input.text`), when the server named one. */
  readonly field: string | undefined;

  constructor(message: string, options: AiMassErrorOptions & { field?: string | undefined }) {
    super(message, options);
    this.field = options.field;
  }
}

export class NotFoundError extends AiMassError {}
export class FailedPreconditionError extends AiMassError {}
export class UnauthenticatedError extends AiMassError {}
export class PermissionDeniedError extends AiMassError {}
export class DeadlineExceededError extends AiMassError {}
/** The call was cancelled by the caller (an AbortSignal) or the connection went away. */
export class CancelledError extends AiMassError {}

export class ResourceExhaustedError extends AiMassError {
  /** How long the server asked to wait before trying again, when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: AiMassErrorOptions & { retryAfterMs?: number | undefined }) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The service could not be reached or is shutting down; safe calls are retried before this is thrown. */
export class UnavailableError extends AiMassError {
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: AiMassErrorOptions & { retryAfterMs?: number | undefined }) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

function statusName(code: number): StatusName {
  const name = (Status as unknown as Record<number, string>)[code];
  return (name ?? 'UNKNOWN') as StatusName;
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

function metadataRecord(metadata: Metadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!metadata) return out;
  for (const [key, value] of Object.entries(metadata.getMap())) {
    out[key] = typeof value === 'string' ? value : `<${value.length} bytes>`;
  }
  return out;
}

function nonNegativeInt(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * The typed error for a failed call: a grpc-js ServiceError, or any `{ code, details, metadata }`
 * (an item error of a batch has no metadata). Anything else becomes an UNKNOWN AiMassError
 * wrapping it. The original is the `cause`.
 */
export function toAiMassError(err: unknown): AiMassError {
  if (err instanceof AiMassError) return err;
  if (!isStatusLike(err)) {
    const text = err instanceof Error ? err.message : String(err);
    return new AiMassError(`UNKNOWN: ${text}`, { grpcCode: Status.UNKNOWN, details: text, cause: err });
  }
  const metadata = metadataRecord(err.metadata);
  const details = err.details ?? err.message ?? '';
  const code = err.code;
  const options: AiMassErrorOptions = { grpcCode: code, details, metadata, cause: err, errorRef: metadata[ERROR_REF_KEY] };
  const retryAfterMs = nonNegativeInt(metadata[RETRY_AFTER_MS_KEY]);
  const field = metadata[INVALID_FIELD_KEY];
  const message = `${statusName(code)}: ${details}${field !== undefined ? ` (field ${field})` : ''}`;
  switch (code as Status) {
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
      return new InvalidArgumentError(message, { ...options, field });
    case Status.NOT_FOUND:
      return new NotFoundError(message, options);
    case Status.FAILED_PRECONDITION:
      return new FailedPreconditionError(message, options);
    case Status.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(message, { ...options, retryAfterMs });
    case Status.UNAVAILABLE:
      return new UnavailableError(message, { ...options, retryAfterMs });
    case Status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(message, options);
    case Status.UNAUTHENTICATED:
      return new UnauthenticatedError(message, options);
    case Status.PERMISSION_DENIED:
      return new PermissionDeniedError(message, options);
    case Status.CANCELLED:
      return new CancelledError(message, options);
    default:
      return new AiMassError(message, options);
  }
}
