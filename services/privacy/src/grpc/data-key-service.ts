import { DataKeyError, TenantKeyError, type DataKey, type DataKeyRing } from '@aimass/crypto';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError, tenantFromMetadata, unary } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import { StoreUnavailableError } from '@aimass/storage';
import { validateKeyId, validatePseudonym } from '../domain/validation.js';

/** The fully-qualified name of the internal key service (health checks). */
export const DATA_KEY_SERVICE_NAME = 'aimass.v1.DataKeyService';

export interface DataKeyServiceOptions {
  /** Users' data keys on privacy's store, with `mayCreate` = "no erasure tombstone". */
  readonly ring: Pick<DataKeyRing, 'currentKey' | 'keyFor'>;
  /** Whether the user has an erasure tombstone. */
  readonly isErased: (tenant: string, userPseudonym: string) => Promise<boolean>;
  /** GetDataKeyResponse.max_cache_seconds. */
  readonly keyCacheSeconds: number;
}

/** GetDataKey for a user with a tombstone and no key id: no key is made for them any more. */
export function userErasedError(): FailedPreconditionError {
  return new FailedPreconditionError(
    'user is erased: no data key is served or created for an erased user; drop what you hold for the user (as on ErasureRequested) instead of sealing or opening their data',
  );
}

function destroyedError(keyId: string): NotFoundError {
  return new NotFoundError(`data key ${keyId} was destroyed at the user's erasure (crypto-shredding): what it sealed cannot be read any more; drop it`);
}

/** The ring's and the key providers' faults as the caller should see them. */
function mapKeyError(err: unknown, keyId: string): never {
  if (err instanceof DataKeyError) {
    switch (err.code) {
      case 'creation_refused':
        throw userErasedError();
      case 'not_found':
        throw new NotFoundError(`${err.message}: what it sealed cannot be read any more; drop it`, { cause: err });
      case 'other_user':
        throw new NotFoundError(
          `data key ${keyId} is not a key of this user in this tenant: the payload was sealed for another user or tenant; check the tenant metadata and the user_pseudonym it is read for`,
          { cause: err },
        );
      case 'invalid_scope':
        throw new InvalidArgumentError(err.message, { cause: err, field: 'user_pseudonym' });
      // unwrap_failed: a moved or altered record, or a KEK replaced instead of rotated. An
      // integrity fault for an operator: INTERNAL, logged with a reference.
    }
  }
  if (err instanceof TenantKeyError && (err.code === 'unknown_tenant' || err.code === 'unknown_version')) {
    // A configuration fault of the privacy service, not a property of the data: the caller retries
    // later rather than treating its payloads as unreadable.
    throw new UnavailableError(`the privacy service cannot unwrap or wrap this tenant's data keys: ${err.message}`, { cause: err });
  }
  if (err instanceof StoreUnavailableError) throw new UnavailableError(`the privacy store is unavailable: ${err.message}`, { cause: err, retryAfterMs: 1000 });
  throw err;
}

/**
 * aimass.v1.DataKeyService: users' data keys for the platform's own services. The tenant comes
 * from the metadata, the user is named by pseudonym (the services behind the edge know no user ids).
 *
 * - no key_id: the user's current key, created on first use (one key however many callers race:
 *   one creation per process, compare-and-set in the store across replicas); FAILED_PRECONDITION
 *   "user is erased" once the user has a tombstone.
 * - key_id: that key, or NOT_FOUND (destroyed at erasure, never existed, another user's).
 *
 * The tombstone is checked first, so a key stops being served the moment the erasure is recorded,
 * even before it is destroyed and on replicas that still hold it in memory.
 */
export function createDataKeyService(o: DataKeyServiceOptions): v1.DataKeyServiceServer {
  return {
    getDataKey: unary<v1.GetDataKeyRequest, v1.GetDataKeyResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const userPseudonym = validatePseudonym(req.userPseudonym, 'user_pseudonym');
      const keyId = validateKeyId(req.keyId);
      const scope = { tenant, userPseudonym };
      let erased: boolean;
      try {
        erased = await o.isErased(tenant, userPseudonym);
      } catch (err) {
        return mapKeyError(err, keyId);
      }
      if (erased) throw keyId === '' ? userErasedError() : destroyedError(keyId);
      let key: DataKey;
      try {
        key = keyId === '' ? await o.ring.currentKey(scope) : await o.ring.keyFor(scope, keyId);
      } catch (err) {
        return mapKeyError(err, keyId);
      }
      return { keyId: key.keyId, key: key.key.export(), maxCacheSeconds: o.keyCacheSeconds };
    }),
  };
}
