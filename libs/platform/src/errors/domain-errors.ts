/**
 * Domain errors: what a handler throws when a request cannot be served. Each class stands for one
 * gRPC status (see `toGrpcStatus`), but the classes themselves know nothing about gRPC, so stores
 * and event code can throw them too. The message is sent to the caller as the status details:
 * write it for the caller, and never put secrets or raw user ids in it.
 */
export type DomainErrorKind =
  | 'cancelled'
  | 'invalid_argument'
  | 'deadline_exceeded'
  | 'not_found'
  | 'already_exists'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'failed_precondition'
  | 'conflict'
  | 'unimplemented'
  | 'internal'
  | 'unavailable'
  | 'unauthenticated';

export abstract class DomainError extends Error {
  abstract readonly kind: DomainErrorKind;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface RetryAfterOptions extends ErrorOptions {
  /** How long the caller should wait before trying again; sent as `retry-after-ms` metadata. */
  retryAfterMs?: number | undefined;
}

export class CancelledError extends DomainError {
  readonly kind = 'cancelled' as const;
}

export class InvalidArgumentError extends DomainError {
  readonly kind = 'invalid_argument' as const;
  /** The request field at fault (dotted path, proto field names), when there is one. */
  readonly field: string | undefined;

  constructor(message: string, options?: ErrorOptions & { field?: string | undefined }) {
    super(message, options);
    this.field = options?.field;
  }
}

export class DeadlineExceededError extends DomainError {
  readonly kind = 'deadline_exceeded' as const;
}

export class NotFoundError extends DomainError {
  readonly kind = 'not_found' as const;
}

export class AlreadyExistsError extends DomainError {
  readonly kind = 'already_exists' as const;
}

export class PermissionDeniedError extends DomainError {
  readonly kind = 'permission_denied' as const;
}

export class ResourceExhaustedError extends DomainError {
  readonly kind = 'resource_exhausted' as const;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: RetryAfterOptions) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export class FailedPreconditionError extends DomainError {
  readonly kind = 'failed_precondition' as const;
}

/** A concurrent modification won (e.g. a compare-and-set on a version): retry from a fresh read. */
export class ConflictError extends DomainError {
  readonly kind = 'conflict' as const;
}

export class UnimplementedError extends DomainError {
  readonly kind = 'unimplemented' as const;
}

/**
 * A bug or an unexpected state. Its message is logged, never sent: callers get a generic
 * "internal error" with a reference that appears in the log line.
 */
export class InternalError extends DomainError {
  readonly kind = 'internal' as const;
}

export class UnavailableError extends DomainError {
  readonly kind = 'unavailable' as const;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: RetryAfterOptions) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export class UnauthenticatedError extends DomainError {
  readonly kind = 'unauthenticated' as const;
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}
