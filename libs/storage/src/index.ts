export type {
  BuiltinField,
  Collection,
  CollectionRef,
  CollectionSpec,
  CountQuery,
  DeleteOptions,
  DocumentData,
  DocumentStore,
  IndexSpec,
  IndexValue,
  OrderDirection,
  Page,
  PutOptions,
  Query,
  StoredDocument,
  WriteOp,
  WriteOpResult,
} from './types.js';
export {
  DocumentTooLargeError,
  InvalidDocumentError,
  InvalidQueryError,
  StorageError,
  StoreUnavailableError,
  UniqueConstraintError,
  VersionConflictError,
  type ActualVersion,
  type ExpectedVersion,
  type StorageErrorCode,
} from './errors.js';
export { DEFAULT_MAX_DOCUMENT_BYTES, MAX_ATOMIC_OPS } from './collection.js';
export { DEFAULT_LIMIT, MAX_LIMIT } from './query.js';
export { openSqliteStore, type SqliteStoreOptions } from './open.js';
export { openMongoStore, type MongoStoreOptions } from './open.js';
export { openConfiguredStore, storeConfigSchema, type StoreConfig, type StoreConfigDefaults } from './config.js';
export { TENANT_TOMBSTONES, TenantTombstones } from './tenant-tombstones.js';
