import { hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pseudonymize, type SecretInput } from './pseudonymize.js';

/** Below this a root secret is refused: 32 bytes matches the HMAC-SHA256 key size. */
export const MIN_ROOT_SECRET_BYTES = 32;

const HKDF_SALT = 'aimass/pseudonym/tenant-key/v1';

export interface PseudonymizerOptions {
  /** One secret for every tenant; each tenant's key is derived from it with HKDF-SHA256. */
  rootSecret: SecretInput;
  /** Per-tenant secrets that replace the derived key (e.g. a tenant that brings its own). */
  tenantSecrets?: Readonly<Record<string, SecretInput>>;
}

/** The `pseudonym` section of a service's configuration (see `pseudonymConfigSchema`). */
export interface PseudonymSecretSource {
  secret?: string | undefined;
  secretFile?: string | undefined;
  tenantSecrets?: Readonly<Record<string, string>> | undefined;
}

function toBytes(secret: SecretInput): Buffer {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
}

/**
 * Turns (tenant, user id) into the keyed pseudonym used in subjects, logs and stores. Tenant
 * keys are derived once and cached; the pseudonyms themselves are not cached (HMAC is cheap and
 * a cache would be a table of raw user ids in memory).
 */
export class Pseudonymizer {
  readonly #root: Buffer;
  readonly #overrides: Map<string, Buffer>;
  readonly #derived = new Map<string, Buffer>();

  constructor(options: PseudonymizerOptions) {
    this.#root = toBytes(options.rootSecret);
    if (this.#root.length < MIN_ROOT_SECRET_BYTES) {
      throw new RangeError(
        `pseudonym root secret too short: ${this.#root.length} bytes, need at least ${MIN_ROOT_SECRET_BYTES}`,
      );
    }
    this.#overrides = new Map(
      Object.entries(options.tenantSecrets ?? {}).map(([tenant, secret]) => {
        const bytes = toBytes(secret);
        if (bytes.length < MIN_ROOT_SECRET_BYTES) {
          throw new RangeError(`pseudonym secret for tenant "${tenant}" too short: need at least ${MIN_ROOT_SECRET_BYTES} bytes`);
        }
        return [tenant, bytes];
      }),
    );
  }

  /** Builds one from configuration: an inline secret or a file holding it (a mounted Secret). */
  static fromConfig(source: PseudonymSecretSource): Pseudonymizer {
    let rootSecret: string | undefined = source.secret;
    if (rootSecret === undefined && source.secretFile !== undefined) {
      // Mounted secrets usually end with a newline that is not part of the secret.
      rootSecret = readFileSync(source.secretFile, 'utf8').replace(/\r?\n$/, '');
    }
    if (rootSecret === undefined) throw new TypeError('pseudonym: set either secret or secretFile');
    return new Pseudonymizer({ rootSecret, ...(source.tenantSecrets ? { tenantSecrets: source.tenantSecrets } : {}) });
  }

  /** The key used for `tenant`: its override if configured, else HKDF(root, tenant). */
  secretFor(tenant: string): Buffer {
    const override = this.#overrides.get(tenant);
    if (override) return override;
    let key = this.#derived.get(tenant);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', this.#root, HKDF_SALT, `tenant:${tenant}`, 32));
      this.#derived.set(tenant, key);
    }
    return key;
  }

  pseudonymize(tenant: string, userId: string): string {
    return pseudonymize(this.secretFor(tenant), tenant, userId);
  }
}
