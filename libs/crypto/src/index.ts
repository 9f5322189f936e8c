export { AES_256_GCM, KEY_BYTES, NONCE_BYTES, TAG_BYTES } from './aes-gcm.js';
export { DataKeyError, TenantKeyError, type DataKeyErrorCode, type TenantKeyErrorCode } from './errors.js';
export {
  DEFAULT_VERSION_PREFIX,
  StaticTenantKeyProvider,
  decodeKek,
  type TenantKek,
  type TenantKeyInventory,
  type TenantKeyProvider,
  type TenantKeySet,
} from './tenant-keys/provider.js';
export { tenantKeysFromConfig, type TenantKeySpec, type TenantKeysFromConfigOptions } from './tenant-keys/from-config.js';
export { CURRENT_VERSION_FILE, DEFAULT_KEY_FOLDER, ensureEmbeddedKeyDirectory, loadTenantKeyDirectory } from './tenant-keys/directory.js';
export { InMemoryWrappedKeyStore, type StoredWrappedKey, type WrappedDataKey, type WrappedKeyStore } from './data-keys/store.js';
export { WRAPPED_KEY_COLLECTION, documentWrappedKeyStore, type WrappedKeyCollection, type WrappedKeyDocument } from './data-keys/document-store.js';
export {
  DEFAULT_KEY_CACHE_MAX_ENTRIES,
  DEFAULT_KEY_CACHE_TTL_MS,
  DataKeyRing,
  type DataKey,
  type DataKeyRingOptions,
  type DataKeyRingStats,
  type DataKeySource,
  type RewrapResult,
} from './data-keys/ring.js';
export { AesGcmSealer, type AesGcmSealerOptions } from './sealer.js';
export {
  dataKeysConfigSchema,
  openConfiguredKeyProvider,
  remoteDataKeysConfigSchema,
  type DataKeysConfig,
  type DataKeysConfigInput,
  type RemoteDataKeysConfig,
} from './config.js';
export {
  DEFAULT_REMOTE_KEY_CACHE_MAX_ENTRIES,
  DEFAULT_REMOTE_KEY_CACHE_TTL_MS,
  DEFAULT_REMOTE_KEY_TIMEOUT_MS,
  PrivacyDataKeySource,
  type PrivacyDataKeySourceOptions,
  type PrivacyDataKeySourceStats,
} from './data-keys/privacy-source.js';
