import { z } from 'zod';
import { openMongoStore, openSqliteStore } from './open.js';
import type { DocumentStore } from './types.js';

export interface StoreConfigDefaults {
  /** SQLite file when none is configured, e.g. `data/fusion.sqlite`. */
  readonly path: string;
  /** MongoDB database when none is configured, e.g. `fusion`. */
  readonly database: string;
}

/**
 * The `store` section every standalone service reads (env `AIMASS_STORE__KIND`, `…__PATH`,
 * `…__URL`, `…__DATABASE`), so operators configure each service's store the same way. The
 * one-process mode ignores it: the runner hands each service its own SQLite file.
 */
export function storeConfigSchema(defaults: StoreConfigDefaults) {
  return z
    .strictObject({
      kind: z.enum(['sqlite', 'mongodb']).default('sqlite'),
      /** SQLite file, created with its directory (kind sqlite). */
      path: z.string().min(1).default(defaults.path),
      /** MongoDB connection string of a replica set (kind mongodb): atomic writes need transactions. */
      url: z.string().min(1).optional(),
      /** MongoDB database (kind mongodb). */
      database: z.string().min(1).default(defaults.database),
    })
    .refine((s) => s.kind !== 'mongodb' || s.url !== undefined, {
      error: 'set store.url (AIMASS_STORE__URL) to a MongoDB replica set for store.kind mongodb',
      path: ['url'],
    });
}

export type StoreConfig = z.output<ReturnType<typeof storeConfigSchema>>;

/** Opens the store a `store` section describes. */
export function openConfiguredStore(config: StoreConfig): Promise<DocumentStore> {
  return config.kind === 'mongodb' ? openMongoStore({ url: config.url!, database: config.database }) : openSqliteStore({ path: config.path });
}
