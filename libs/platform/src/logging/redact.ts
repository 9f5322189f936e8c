import { pino } from 'pino';

export const REDACTED = '[redacted]';

/**
 * Keys that identify a person. Their values are replaced by `psn:<pseudonym>` when the logger has
 * a pseudonymizer and the tenant is known (a `tenant`/`tenantId` key in the same object, an
 * enclosing one, or the logger's bindings), else by `[redacted]`. Compared case-insensitively
 * with `_` and `-` ignored, so `userId`, `user_id` and `USER-ID` are the same key.
 */
export const IDENTIFIER_KEYS: readonly string[] = [
  'userId',
  'user',
  'username',
  'externalUserId',
  'email',
  'emailAddress',
  'phone',
  'phoneNumber',
  'ipAddress',
  'clientIp',
];

/** Keys holding what a person sent or what was computed from it: always `[redacted]`. */
export const CONTENT_KEYS: readonly string[] = [
  'input',
  'inputs',
  'text',
  'features',
  'payload',
  'body',
  'content',
  'embedding',
  'document',
  'prompt',
];

/**
 * Keys holding credentials: always `[redacted]`. Any key ending in one of these (`tenantSecret`,
 * `accessToken`, `adminPassword`, `xApiKey`) counts too, and in `secrets` or `passwords` (`tenantSecrets`).
 */
export const SECRET_KEYS: readonly string[] = [
  'password',
  'passwd',
  'secret',
  'token',
  'apiKey',
  'authorization',
  'cookie',
  'setCookie',
  'privateKey',
  'credentials',
];

const normalize = (key: string): string => key.toLowerCase().replace(/[_-]/g, '');
const IDENTIFIERS = new Set(IDENTIFIER_KEYS.map(normalize));
const CONTENT = new Set(CONTENT_KEYS.map(normalize));
const SECRETS = SECRET_KEYS.map(normalize);
const PLURAL_SECRETS = ['secrets', 'passwords'];

type KeyClass = 'identifier' | 'redacted' | 'plain';

function classify(key: string): KeyClass {
  const k = normalize(key);
  if (IDENTIFIERS.has(k)) return 'identifier';
  // `tenantSecrets` (a map of them) holds secrets as much as `tenantSecret`; other plurals
  // (`maxTokens`) are counts, not credentials.
  if (CONTENT.has(k) || SECRETS.some((s) => k.endsWith(s)) || PLURAL_SECRETS.some((s) => k.endsWith(s))) return 'redacted';
  return 'plain';
}

/** Decides for a key alone; exported so other code (config errors) can share the rule. */
export function isSensitiveKey(key: string): boolean {
  return classify(key) !== 'plain';
}

export interface RedactOptions {
  /** Turns a user id into the pseudonym to log (`Pseudonymizer.pseudonymize`). */
  pseudonymize?: ((tenant: string, userId: string) => string) | undefined;
  /** Tenant to use when the object itself names none. */
  tenant?: string | undefined;
}

const MAX_DEPTH = 12;

function tenantOf(obj: Record<string, unknown>): string | undefined {
  const t = obj['tenant'] ?? obj['tenantId'] ?? obj['tenant_id'];
  return typeof t === 'string' && t.length > 0 ? t : undefined;
}

function replaceIdentifier(value: unknown, tenant: string | undefined, options: RedactOptions): unknown {
  if (value === undefined || value === null) return value;
  if (options.pseudonymize && tenant !== undefined && (typeof value === 'string' || typeof value === 'number')) {
    const id = String(value);
    if (id.length > 0) return `psn:${options.pseudonymize(tenant, id)}`;
  }
  return REDACTED;
}

/**
 * A copy of `value` in which every sensitive key, at any depth (objects, arrays, errors and their
 * causes), is replaced. Errors become plain objects (type, message, stack, own fields) so their
 * fields are checked too. Free text is not scanned: a user id inside a message string cannot be
 * found, which is why the rule is to log `pseudonym`, never `userId`.
 */
export function redactSensitive(value: unknown, options: RedactOptions = {}): unknown {
  const seen = new WeakSet<object>();

  const walk = (v: unknown, depth: number, tenant: string | undefined): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (seen.has(v)) return '[circular]';
    if (depth > MAX_DEPTH) return '[too deep]';
    if (v instanceof Error) {
      seen.add(v);
      return walk({ ...(pino.stdSerializers.err(v) as unknown as Record<string, unknown>) }, depth, tenant);
    }
    if (ArrayBuffer.isView(v)) return `[${v.byteLength} bytes]`;
    const withJson = v as { toJSON?: () => unknown };
    if (typeof withJson.toJSON === 'function' && !Array.isArray(v)) return walk(withJson.toJSON(), depth, tenant);
    seen.add(v);
    try {
      if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1, tenant));
      const obj = v as Record<string, unknown>;
      const here = tenantOf(obj) ?? tenant;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(obj)) {
        const child = obj[key];
        switch (classify(key)) {
          case 'identifier':
            out[key] = replaceIdentifier(child, here, options);
            break;
          case 'redacted':
            out[key] = child === undefined ? undefined : REDACTED;
            break;
          default:
            out[key] = walk(child, depth + 1, here);
        }
      }
      return out;
    } finally {
      // Only ancestors count as cycles; the same object twice side by side is fine.
      seen.delete(v);
    }
  };

  return walk(value, 0, options.tenant);
}
