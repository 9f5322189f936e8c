import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { ConfigError } from '@aimass/platform';
import { z } from 'zod';
import { DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_CACHE_TTL_MS, DEFAULT_USE_REPORT_INTERVAL_MS } from './authenticator.js';
import { MIN_INTERNAL_SECRET_BYTES } from './service-token.js';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const secretError = `expected a secret of at least ${MIN_INTERNAL_SECRET_BYTES} characters (e.g. \`openssl rand -base64 48\`)`;
const address = z.string().regex(/^\S+:\d+$|^[a-z]+:\/\/?\S+$/, { error: 'expected host:port (or a grpc-js target such as dns:///fusion:50051)' });

export const AUTH_MODES = ['none', 'api-keys'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** The `auth` section every service reads (env: `AIMASS_AUTH__<KEY>`). */
export const authConfigSchema = z
  .strictObject({
    /**
     * `api-keys`: every call but health and reflection needs credentials (production). `none`
     * (the default, for now): nothing is checked and the tenant is read from `x-aimass-tenant`.
     */
    mode: z.enum(AUTH_MODES, { error: `expected one of ${AUTH_MODES.join(', ')}` }).default('none'),
    /** The platform's internal token secret, shared by all services (prefer the file). */
    internalTokenSecret: z.string({ error: secretError }).min(MIN_INTERNAL_SECRET_BYTES, { error: secretError }).optional(),
    /** A file holding the internal token secret, e.g. a mounted Kubernetes Secret. */
    internalTokenSecretFile: z.string().min(1).optional(),
    /** How old a service token may be. */
    serviceTokenMaxAgeSeconds: positiveInt('a number of seconds').default(300),
    /** SHA-256 (hex) of the operator token: the configuration never holds the token itself. */
    operatorTokenSha256: z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected 64 lower-case hex characters (sha256sum of the token)' }).optional(),
    /** A file holding the operator token (hashed when read). */
    operatorTokenFile: z.string().min(1).optional(),
    /**
     * How long a looked-up API key is reused: the bound on how late a revocation or suspension
     * made in another process takes effect here.
     */
    cacheTtlMs: positiveInt('a duration in milliseconds').default(DEFAULT_CACHE_TTL_MS),
    cacheMaxEntries: positiveInt('a number of entries').default(DEFAULT_CACHE_MAX_ENTRIES),
    /** How often API keys' uses are reported (ApiKey.last_used_at is at most this late); 0 reports none. */
    useReportIntervalMs: z
      .number({ error: 'expected a duration in milliseconds (a whole number >= 0)' })
      .int({ error: 'expected a duration in milliseconds (a whole number >= 0)' })
      .min(0, { error: 'expected a duration in milliseconds (a whole number >= 0)' })
      .default(DEFAULT_USE_REPORT_INTERVAL_MS),
    /** fusion's CredentialService, where services other than fusion verify API keys. */
    credentialService: z
      .strictObject({
        address: address.optional(),
        callTimeoutMs: positiveInt('a duration in milliseconds').default(2_000),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.internalTokenSecret !== undefined && c.internalTokenSecretFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['internalTokenSecret'], message: 'set at most one of internalTokenSecret or internalTokenSecretFile' });
    }
    if (c.operatorTokenSha256 !== undefined && c.operatorTokenFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['operatorTokenSha256'], message: 'set at most one of operatorTokenSha256 or operatorTokenFile' });
    }
    if (c.mode === 'api-keys' && c.internalTokenSecret === undefined && c.internalTokenSecretFile === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['internalTokenSecretFile'],
        message: 'auth.mode api-keys needs the internal token secret the services authenticate each other with: set AIMASS_AUTH__INTERNAL_TOKEN_SECRET_FILE (or AIMASS_AUTH__INTERNAL_TOKEN_SECRET)',
      });
    }
  });

export type AuthConfig = z.output<typeof authConfigSchema>;
export type AuthConfigInput = z.input<typeof authConfigSchema>;

function readSecretFile(path: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: `auth.${key}`, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return text.trim();
}

/** The internal token secret, from the value or the file; undefined when neither is set. */
export function internalSecretOf(config: AuthConfig): Buffer | undefined {
  const value = config.internalTokenSecret ?? (config.internalTokenSecretFile ? readSecretFile(config.internalTokenSecretFile, 'internalTokenSecretFile') : undefined);
  if (value === undefined) return undefined;
  if (Buffer.byteLength(value) < MIN_INTERNAL_SECRET_BYTES) {
    throw new ConfigError([{ path: 'auth.internalTokenSecretFile', message: secretError }]);
  }
  return Buffer.from(value, 'utf8');
}

/** SHA-256 of the operator token, from the hash or the file; undefined: no operator. */
export function operatorHashOf(config: AuthConfig): Buffer | undefined {
  if (config.operatorTokenSha256) return Buffer.from(config.operatorTokenSha256, 'hex');
  if (!config.operatorTokenFile) return undefined;
  const token = readSecretFile(config.operatorTokenFile, 'operatorTokenFile');
  if (token.length < 32) throw new ConfigError([{ path: 'auth.operatorTokenFile', message: 'the operator token must be at least 32 characters' }]);
  return createHash('sha256').update(token, 'utf8').digest();
}
