import { randomBytes } from 'node:crypto';
import { DataKeyRing, InMemoryWrappedKeyStore, tenantKeysFromConfig, type DataKeyRingOptions, type StaticTenantKeyProvider } from '@aimass/crypto';

/**
 * Users' data keys as the privacy service keeps them: real AES-256-GCM keys wrapped by a random
 * default tenant key, in one key store. `ring()` opens another process's view of it (its own
 * memory cache, the same store and KEK), so a key destroyed through one ring is gone for all,
 * once their caches let go of it.
 */
export interface TestKeys {
  readonly kek: StaticTenantKeyProvider;
  readonly store: InMemoryWrappedKeyStore;
  ring(options?: Partial<Omit<DataKeyRingOptions, 'kek' | 'store'>>): DataKeyRing;
}

export function testKeys(): TestKeys {
  const kek = tenantKeysFromConfig({ default: randomBytes(32).toString('base64') });
  const store = new InMemoryWrappedKeyStore();
  return { kek, store, ring: (options = {}) => new DataKeyRing({ kek, store, ...options }) };
}
