import type { Interceptor, ServerInterceptor } from '@grpc/grpc-js';
import { ConfigError, type Logger } from '@aimass/platform';
import { Authenticator, type CredentialSource } from './authenticator.js';
import { RemoteCredentialSource, serviceTokenInterceptor } from './client.js';
import { authConfigSchema, internalSecretOf, operatorHashOf, type AuthConfig, type AuthConfigInput } from './config.js';
import { authInterceptor } from './interceptor.js';
import { ServiceTokenIssuer } from './service-token.js';

export const AUTH_OFF_WARNING =
  'authentication is off: the tenant is read from x-aimass-tenant; set AIMASS_AUTH__MODE=api-keys';

export interface ServiceAuth {
  readonly config: AuthConfig;
  /** For createGrpcServer's `interceptors` (empty when authentication is off). */
  readonly serverInterceptors: ServerInterceptor[];
  /**
   * For the clients of other platform services: sends this service's token whenever an internal
   * secret is configured (also with mode none, so services can be switched to api-keys one by one).
   */
  readonly clientInterceptors: Interceptor[];
  /** Undefined when authentication is off. */
  readonly authenticator: Authenticator | undefined;
  close(): void;
}

export interface SetupServiceAuthOptions {
  /** The `auth` section; absent means mode none. */
  readonly config: AuthConfigInput | undefined;
  /** This service's name, carried in its tokens (`fusion`, `privacy`, …). */
  readonly service: string;
  readonly logger: Logger;
  /**
   * Where API keys are verified. fusion passes its own store; the others omit it and use
   * `auth.credentialService.address` (fusion's CredentialService), or accept service tokens only
   * when that is unset (personal-model).
   */
  readonly credentials?: CredentialSource | undefined;
  /** Whether this service takes API keys at all (false: service tokens only, no lookup needed). */
  readonly acceptsApiKeys?: boolean | undefined;
}

/** Reads the `auth` section and builds what a service needs: its server interceptor and its client token. */
export function setupServiceAuth(options: SetupServiceAuthOptions): ServiceAuth {
  const config = authConfigSchema.parse(options.config ?? {});
  const secret = internalSecretOf(config);
  const clientInterceptors = secret ? [serviceTokenInterceptor(new ServiceTokenIssuer(secret, options.service))] : [];
  if (config.mode === 'none') {
    options.logger.warn({ auth: 'none' }, AUTH_OFF_WARNING);
    return { config, serverInterceptors: [], clientInterceptors, authenticator: undefined, close: () => undefined };
  }
  let remote: RemoteCredentialSource | undefined;
  let credentials = options.credentials;
  if (!credentials && options.acceptsApiKeys !== false) {
    const address = config.credentialService.address;
    if (address === undefined) {
      throw new ConfigError([
        {
          path: 'auth.credentialService.address',
          message: `${options.service} verifies API keys through fusion's CredentialService: set AIMASS_AUTH__CREDENTIAL_SERVICE__ADDRESS (fusion's host:port)`,
        },
      ]);
    }
    remote = new RemoteCredentialSource({ address, interceptors: clientInterceptors, callTimeoutMs: config.credentialService.callTimeoutMs });
    credentials = remote;
  }
  const operatorTokenSha256 = operatorHashOf(config);
  const authenticator = new Authenticator({
    credentials,
    internalSecret: secret,
    serviceTokenMaxAgeMs: config.serviceTokenMaxAgeSeconds * 1000,
    operatorTokenSha256,
    cacheTtlMs: config.cacheTtlMs,
    cacheMaxEntries: config.cacheMaxEntries,
    useReportIntervalMs: config.useReportIntervalMs,
    onUseReportError: (err) => options.logger.warn({ err }, "could not report API keys' last use; kept for the next report"),
  });
  options.logger.info(
    { auth: config.mode, apiKeys: credentials ? (remote ? 'credential service' : 'local store') : 'refused', cacheTtlMs: config.cacheTtlMs, operator: operatorTokenSha256 !== undefined },
    'authentication on',
  );
  return {
    config,
    serverInterceptors: [authInterceptor({ authenticator, logger: options.logger })],
    clientInterceptors,
    authenticator,
    close: () => {
      authenticator.close();
      remote?.close();
    },
  };
}
