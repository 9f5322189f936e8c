import type { MongoStoreOptions } from './mongodb.js';
import type { SqliteStoreOptions } from './sqlite.js';
import type { DocumentStore } from './types.js';

export type { MongoStoreOptions, SqliteStoreOptions };

// Each adapter is loaded on first use: the embedded runner never pays for the MongoDB driver, and
// a cluster deployment never loads the native SQLite addon.

/** Opens a SQLite store (see `SqliteStoreOptions`): WAL, `synchronous=NORMAL`, one file per service. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<DocumentStore> {
  const { openSqliteStore: open } = await import('./sqlite.js');
  return open(options);
}

/** Connects to MongoDB (see `MongoStoreOptions`); `writeAtomic` needs a replica set. */
export async function openMongoStore(options: MongoStoreOptions): Promise<DocumentStore> {
  const { openMongoStore: open } = await import('./mongodb.js');
  return open(options);
}
