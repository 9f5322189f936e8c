import { authConfigSchema, operatorHashOf, internalSecretOf, type AuthConfig } from '@aimass/auth';
import { ConfigError, embeddedConfig, embeddedSecretFile, type EmbeddedSecret, type Logger } from '@aimass/platform';
import { z } from 'zod';

/** Where the one-process mode keeps its generated internal token secret, in its data directory. */
export const EMBEDDED_INTERNAL_SECRET_FILE = 'internal-token.secret';

const INTERNAL_SECRET: EmbeddedSecret = {
  file: EMBEDDED_INTERNAL_SECRET_FILE,
  what: 'the internal service-token secret',
  variable: 'AIMASS_AUTH__INTERNAL_TOKEN_SECRET_FILE',
};

// libs/auth's keys and checks of each value, without its cross-field rule that api-keys needs a
// configured secret: here an unset secret means "generate one", so that rule runs after the defaults.
const envSchema = z.strictObject({ auth: z.strictObject(authConfigSchema.shape).prefault({}) });

export interface EmbeddedAuthOptions {
  /** Variables to read (AIMASS_AUTH__*); `process.env` by default. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** The run's data directory, where a generated internal secret is kept. */
  readonly dataDir: string;
  /**
   * Where the run's fusion will listen (its CredentialService verifies API keys for the other
   * services), known before it starts; undefined when this run has no fusion. Asked only in mode
   * api-keys without a configured AIMASS_AUTH__CREDENTIAL_SERVICE__ADDRESS.
   */
  fusionAddress(): Promise<string | undefined>;
  readonly logger: Logger;
}

/**
 * The `auth` section every embedded service of the run gets, read once from AIMASS_AUTH__* (the
 * embedded services' own configuration never includes it). In mode api-keys what a deployment
 * must configure gets one-process defaults: the internal token secret is a file generated once in
 * the data directory (so service tokens stay valid across restarts, like the pseudonym secret),
 * and the credential service is the run's fusion. A bad value throws a ConfigError (exit 78).
 */
export async function embeddedAuth(options: EmbeddedAuthOptions): Promise<AuthConfig> {
  const read = embeddedConfig(envSchema, options.env).auth;
  if (read.mode === 'none') return parsed(read);

  const secretConfigured = read.internalTokenSecret !== undefined || read.internalTokenSecretFile !== undefined;
  const auth = parsed({
    ...read,
    ...(secretConfigured ? {} : { internalTokenSecretFile: await embeddedSecretFile(options.dataDir, options.logger, INTERNAL_SECRET) }),
    credentialService: { ...read.credentialService, address: read.credentialService.address ?? (await options.fusionAddress()) },
  });
  // Read both secrets now: an unreadable or short file stops the runner once, before any service starts.
  internalSecretOf(auth);
  if (operatorHashOf(auth) === undefined) options.logger.warn({ auth: auth.mode }, FIRST_TENANT_HINT);
  return auth;
}

/**
 * How to get a first tenant and key when nobody can administer tenants yet: without the operator
 * token's hash every call but health is refused, and no key can be made.
 */
export const FIRST_TENANT_HINT =
  'API keys are required (AIMASS_AUTH__MODE=api-keys) but no operator is configured, so no tenant or key can be created. ' +
  'Stop the runner, pick an operator token and start again with its hash: ' +
  'TOKEN=$(openssl rand -hex 32); AIMASS_AUTH__OPERATOR_TOKEN_SHA256=$(printf %s "$TOKEN" | sha256sum | cut -d" " -f1) npm start ' +
  '(or AIMASS_AUTH__OPERATOR_TOKEN_FILE=<file holding the token>). Then create a tenant and its first key: ' +
  'AIMASS_OPERATOR_TOKEN=$TOKEN npx aimass tenants create acme; ' +
  'AIMASS_OPERATOR_TOKEN=$TOKEN npx aimass keys create acme --name backend --scope predict,feedback,consent ' +
  '(the key is printed once; send it as --api-key or AIMASS_API_KEY)';

/** libs/auth's full check (the cross-field rules), reported as configuration problems. */
function parsed(input: z.input<typeof authConfigSchema>): AuthConfig {
  const result = authConfigSchema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((issue) => ({ path: ['auth', ...issue.path.map(String)].join('.'), message: issue.message })));
}
