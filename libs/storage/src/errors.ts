/**
 * Errors are plain classes with a stable `code` so callers (libs/platform maps them to gRPC status
 * codes) can branch on `err.code` without importing adapter internals or driver error types.
 */
export type StorageErrorCode =
  | 'version_conflict'
  | 'unique_conflict'
  | 'document_too_large'
  | 'invalid_query'
  | 'invalid_document'
  | 'unavailable';

export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The version a write expected, as the caller gave it. */
export type ExpectedVersion = number | 'absent' | 'any';
/** The version found: a number, or `'absent'` when the document does not exist. */
export type ActualVersion = number | 'absent';

/** A compare-and-set condition did not hold: another writer got there first. */
export class VersionConflictError extends StorageError {
  readonly collection: string;
  readonly tenant: string;
  readonly id: string;
  readonly expected: ExpectedVersion;
  readonly actual: ActualVersion;
  /** Position of the failing operation in a `writeAtomic` batch. */
  readonly opIndex: number | undefined;

  constructor(args: {
    collection: string;
    tenant: string;
    id: string;
    expected: ExpectedVersion;
    actual: ActualVersion;
    opIndex?: number;
  }) {
    const where = args.opIndex === undefined ? '' : ` (op ${args.opIndex})`;
    super(
      'version_conflict',
      `version conflict on ${args.collection}/${args.id} in tenant ${args.tenant}${where}: expected ${String(args.expected)}, found ${String(args.actual)}`,
    );
    this.collection = args.collection;
    this.tenant = args.tenant;
    this.id = args.id;
    this.expected = args.expected;
    this.actual = args.actual;
    this.opIndex = args.opIndex;
  }
}

/** A write would give two documents of one tenant the same value of a unique index. */
export class UniqueConstraintError extends StorageError {
  readonly collection: string;
  readonly tenant: string;
  readonly id: string;
  readonly fields: readonly string[];
  readonly opIndex: number | undefined;

  constructor(args: { collection: string; tenant: string; id: string; fields: readonly string[]; opIndex?: number; cause?: unknown }) {
    super(
      'unique_conflict',
      `unique index (${args.fields.join(', ')}) of ${args.collection} already holds the value of ${args.id} in tenant ${args.tenant}`,
      { cause: args.cause },
    );
    this.collection = args.collection;
    this.tenant = args.tenant;
    this.id = args.id;
    this.fields = args.fields;
    this.opIndex = args.opIndex;
  }
}

export class DocumentTooLargeError extends StorageError {
  readonly collection: string;
  readonly id: string;
  readonly size: number;
  readonly limit: number;

  constructor(args: { collection: string; id: string; size: number; limit: number }) {
    super(
      'document_too_large',
      `document ${args.collection}/${args.id} is ${args.size} bytes encoded, above the limit of ${args.limit} bytes; split large binaries across documents`,
    );
    this.collection = args.collection;
    this.id = args.id;
    this.size = args.size;
    this.limit = args.limit;
  }
}

/** A query, spec or key argument the store cannot honour; `field` names the culprit. */
export class InvalidQueryError extends StorageError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('invalid_query', `${field}: ${message}`);
    this.field = field;
  }
}

/** A document value the store cannot round-trip exactly; `path` points into the data (`data.a.b[2]`). */
export class InvalidDocumentError extends StorageError {
  readonly path: string;

  constructor(path: string, message: string) {
    super('invalid_document', `${path}: ${message}`);
    this.path = path;
  }
}

/** The store cannot serve the call now (closed, busy past its timeout, unreachable). */
export class StoreUnavailableError extends StorageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}
