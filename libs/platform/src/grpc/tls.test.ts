import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InterceptingCall, credentials, type Interceptor } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { baseConfigSchema } from '../config/base-schema.js';
import { ConfigError } from '../config/config-error.js';
import { loadConfig } from '../config/load-config.js';
import { createLogger } from '../logging/logger.js';
import { defaultClientSecurity, resetDefaultClientSecurity, setDefaultClientSecurity } from './client-defaults.js';
import { createGrpcServer } from './server.js';
import { checkPemFile, clientSecurityFromConfig } from './tls.js';

// Certificates need openssl (libs/testing makeTestPki); the handshake tests with them live in
// services/personal-model/test/tls.test.ts. These cover what fails before any handshake.
const dir = mkdtempSync(join(tmpdir(), 'aimass-tls-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const keyFile = file('key.pem', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
const notPem = file('not-pem.txt', 'hello\n');
const badCert = file('bad.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
const aDir = join(dir, 'a-directory');
mkdirSync(aDir);

function problems(env: Record<string, string>): ConfigError {
  try {
    loadConfig(baseConfigSchema, { env: { AIMASS_SERVICE_NAME: 'svc', ...env } });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('TLS configuration', () => {
  it('is unset by default: plaintext', () => {
    const config = loadConfig(baseConfigSchema, { env: { AIMASS_SERVICE_NAME: 'svc' } });
    expect(config.grpc.tls).toBeUndefined();
    expect(config.grpc.clientTls).toBeUndefined();
    expect(clientSecurityFromConfig(config.grpc)).toEqual({});
  });

  it('names the key, the variable and the path of a missing certificate file', () => {
    const err = problems({ AIMASS_GRPC__TLS__CERT_FILE: '/nonexistent/tls.crt', AIMASS_GRPC__TLS__KEY_FILE: keyFile });
    expect(err.problems).toHaveLength(1);
    expect(err.message).toContain('grpc.tls.certFile (from AIMASS_GRPC__TLS__CERT_FILE="/nonexistent/tls.crt"): cannot read "/nonexistent/tls.crt": file not found');
  });

  it('reports files that are not what their key says, each by key', () => {
    const err = problems({
      AIMASS_GRPC__TLS__CERT_FILE: badCert,
      AIMASS_GRPC__TLS__KEY_FILE: notPem,
      AIMASS_GRPC__CLIENT_TLS__CA_FILE: aDir,
    });
    const byKey = Object.fromEntries(err.problems.map((p) => [p.path, p.message]));
    expect(byKey['grpc.tls.certFile']).toMatch(new RegExp(`^"${badCert}" holds an invalid certificate`));
    expect(byKey['grpc.tls.keyFile']).toMatch(new RegExp(`^"${notPem}" holds no usable PEM private key`));
    expect(byKey['grpc.clientTls.caFile']).toBe(`cannot read "${aDir}": is a directory, not a file`);
    expect(checkPemFile(notPem, 'certificate')).toBe(`"${notPem}" holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
    expect(checkPemFile(keyFile, 'private key')).toBeUndefined();
  });

  it('requires a CA for client authentication and a CA-less clientAuth none, and both halves of a client certificate', () => {
    const err = problems({
      AIMASS_GRPC__TLS__CERT_FILE: '/nonexistent/tls.crt',
      AIMASS_GRPC__TLS__KEY_FILE: keyFile,
      AIMASS_GRPC__TLS__CLIENT_AUTH: 'require',
      AIMASS_GRPC__CLIENT_TLS__CA_FILE: '/nonexistent/ca.crt',
      AIMASS_GRPC__CLIENT_TLS__KEY_FILE: keyFile,
    });
    const byKey = Object.fromEntries(err.problems.map((p) => [p.path, p.message]));
    expect(byKey['grpc.tls.caFile']).toBe('clientAuth require needs caFile, the CA that client certificates must chain to');
    expect(byKey['grpc.clientTls.certFile']).toBe('set both certFile and keyFile (the client certificate), or neither');
    expect(problems({ AIMASS_GRPC__TLS__CLIENT_AUTH: 'maybe' }).message).toContain('grpc.tls.clientAuth (from AIMASS_GRPC__TLS__CLIENT_AUTH="maybe"): expected one of none, request, require');
    expect(problems({ AIMASS_GRPC__TLS__CLIENT_AUTH: 'require' }).message).toContain('grpc.tls.certFile: required (set AIMASS_GRPC__TLS__CERT_FILE');
  });

  it('createGrpcServer reads the files at creation: one gone since the config was loaded is a ConfigError naming its key', () => {
    const logger = createLogger({ service: 'test', level: 'silent' });
    const config = { host: '127.0.0.1', port: 0, maxReceiveMessageBytes: 1024, maxSendMessageBytes: 1024, requireDeadline: true, drainTimeoutMs: 1000 };
    const tls = { certFile: join(dir, 'gone.crt'), keyFile, clientAuth: 'none' as const };
    expect(() => createGrpcServer({ config: { ...config, tls }, logger, services: [] })).toThrow(ConfigError);
    expect(() => createGrpcServer({ config: { ...config, tls }, logger, services: [] })).toThrow(`grpc.tls.certFile: cannot read "${tls.certFile}": file not found`);
  });
});

describe('default client security', () => {
  afterEach(() => resetDefaultClientSecurity());

  it('adds interceptors to those registered before and replaces credentials', () => {
    const a: Interceptor = (options, next) => new InterceptingCall(next(options));
    const b: Interceptor = (options, next) => new InterceptingCall(next(options));
    const first = credentials.createInsecure();
    const second = credentials.createSsl();
    setDefaultClientSecurity({ credentials: first, interceptors: [a] });
    setDefaultClientSecurity({ interceptors: [b] });
    expect(defaultClientSecurity()).toEqual({ credentials: first, interceptors: [a, b] });
    setDefaultClientSecurity({ credentials: second });
    expect(defaultClientSecurity().credentials).toBe(second);
    expect(defaultClientSecurity().interceptors).toEqual([a, b]);
    resetDefaultClientSecurity();
    expect(defaultClientSecurity()).toEqual({ credentials: undefined, interceptors: [] });
  });
});
