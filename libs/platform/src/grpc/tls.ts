import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkServerIdentity } from 'node:tls';
import { ServerCredentials, credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { z } from 'zod';
import { ConfigError } from '../config/config-error.js';
import type { ClientSecurity } from './client-defaults.js';

/** What a PEM file must hold: one or more certificates (a chain or a CA bundle), or a private key. */
export type PemKind = 'certificate' | 'private key';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readReason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'file not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return (err as Error).message;
  }
}

type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

function readPem(path: string): Checked<Buffer> {
  try {
    return { ok: true, value: readFileSync(path) };
  } catch (err) {
    return { ok: false, message: `cannot read "${path}": ${readReason(err)}` };
  }
}

function parseCertificates(path: string, pem: Buffer): Checked<X509Certificate[]> {
  const blocks = pem.toString('latin1').match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) return { ok: false, message: `"${path}" holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)` };
  try {
    return { ok: true, value: blocks.map((b) => new X509Certificate(b)) };
  } catch (err) {
    return { ok: false, message: `"${path}" holds an invalid certificate: ${(err as Error).message}` };
  }
}

function parseKey(path: string, pem: Buffer): Checked<KeyObject> {
  try {
    return { ok: true, value: createPrivateKey(pem) };
  } catch (err) {
    // Node's message ("error:1E08010C:DECODER routines::unsupported") says little on its own.
    return { ok: false, message: `"${path}" holds no usable PEM private key (unencrypted PKCS#8, PKCS#1 or SEC1 expected): ${(err as Error).message}` };
  }
}

/** Reads and parses one PEM file; a problem message when it is missing, unreadable or not `kind`. */
export function checkPemFile(path: string, kind: PemKind): string | undefined {
  const read = readPem(path);
  if (!read.ok) return read.message;
  const parsed = kind === 'certificate' ? parseCertificates(path, read.value) : parseKey(path, read.value);
  return parsed.ok ? undefined : parsed.message;
}

/** Whether `keyFile` is the private key of the first certificate in `certFile` (undefined if either is unusable). */
function keyMatchesCertificate(certFile: string, keyFile: string): boolean | undefined {
  const certPem = readPem(certFile);
  const keyPem = readPem(keyFile);
  if (!certPem.ok || !keyPem.ok) return undefined;
  const certs = parseCertificates(certFile, certPem.value);
  const key = parseKey(keyFile, keyPem.value);
  if (!certs.ok || !key.ok) return undefined;
  return certs.value[0]!.checkPrivateKey(key.value);
}

/**
 * A config key holding the path of a PEM file, checked when the configuration is loaded: the
 * file must be readable and hold a `kind`, so a wrong mount fails the start (exit 78, naming the
 * key and the path) instead of the first handshake.
 */
export function pemFileSchema(kind: PemKind) {
  const expected = `expected the path of a PEM ${kind} file`;
  return z
    // A missing value keeps the loader's "required (set AIMASS_…)".
    .string({ error: (iss) => (iss.input === undefined ? undefined : expected) })
    .min(1, { error: expected })
    .superRefine((path, ctx) => {
      if (path.length === 0) return;
      const problem = checkPemFile(path, kind);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    });
}

const keyPairRefinement = (c: { certFile?: string | undefined; keyFile?: string | undefined }, ctx: z.RefinementCtx) => {
  if (c.certFile === undefined || c.keyFile === undefined) return;
  if (keyMatchesCertificate(c.certFile, c.keyFile) === false) {
    ctx.addIssue({ code: 'custom', path: ['keyFile'], message: `"${c.keyFile}" is not the private key of the certificate in "${c.certFile}"` });
  }
};

export const CLIENT_AUTH_MODES = ['none', 'request', 'require'] as const;
export type ClientAuthMode = (typeof CLIENT_AUTH_MODES)[number];

/**
 * `grpc.tls`: the server's certificate, and whether callers must present one (mTLS). Unset, the
 * server speaks plaintext: the one-process mode and tests; a cluster sets it.
 */
export const grpcServerTlsConfigSchema = z
  .strictObject({
    /** The server's certificate chain (PEM), leaf first. */
    certFile: pemFileSchema('certificate'),
    /** Its private key (PEM, unencrypted). */
    keyFile: pemFileSchema('private key'),
    /** CA certificates (PEM bundle) that client certificates must chain to; needed for `request` and `require`. */
    caFile: pemFileSchema('certificate').optional(),
    /**
     * `none`: no client certificate is asked for. `require`: a client certificate signed by
     * `caFile` is required (mTLS): other peers cannot even open a connection. `request`: one is
     * asked for, and calls without a valid one are still served; for a migration to `require`.
     */
    clientAuth: z.enum(CLIENT_AUTH_MODES, { error: 'expected one of none, request, require' }).default('none'),
  })
  .superRefine(keyPairRefinement)
  .superRefine((c, ctx) => {
    if (c.clientAuth !== 'none' && c.caFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['caFile'], message: `clientAuth ${c.clientAuth} needs caFile, the CA that client certificates must chain to` });
    }
    if (c.clientAuth === 'none' && c.caFile !== undefined) {
      // A CA without client authentication would check nothing: most likely a forgotten clientAuth.
      ctx.addIssue({ code: 'custom', path: ['clientAuth'], message: 'caFile is set but clientAuth is none: set clientAuth to require (or request), or remove caFile' });
    }
  });
export type GrpcServerTlsConfig = z.output<typeof grpcServerTlsConfigSchema>;

/**
 * `grpc.clientTls`: how this process calls the other platform services. One identity per process:
 * every internal client uses it through `setDefaultClientSecurity`.
 */
export const grpcClientTlsConfigSchema = z
  .strictObject({
    /** CA certificates (PEM bundle) that the services' server certificates must chain to. */
    caFile: pemFileSchema('certificate'),
    /** This process's client certificate (PEM), for servers with clientAuth require; with keyFile. */
    certFile: pemFileSchema('certificate').optional(),
    keyFile: pemFileSchema('private key').optional(),
    /**
     * The name checked against the servers' certificates instead of the host in each address
     * (e.g. one certificate for all services, issued to `aimass-internal`).
     */
    serverNameOverride: z.string().min(1).optional(),
  })
  .superRefine((c, ctx) => {
    if ((c.certFile === undefined) !== (c.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: [c.certFile === undefined ? 'certFile' : 'keyFile'], message: 'set both certFile and keyFile (the client certificate), or neither' });
    }
  })
  .superRefine(keyPairRefinement);
export type GrpcClientTlsConfig = z.output<typeof grpcClientTlsConfigSchema>;

/**
 * Reads the files a TLS section names. They were checked when the configuration was loaded; one
 * that has changed or gone since is still a configuration problem (ConfigError: exit 78 through
 * `failFast`), named by its key.
 */
function readFiles<K extends string>(section: string, files: Partial<Record<K, { path: string; kind: PemKind }>>): Record<K, Buffer | undefined> {
  const out = {} as Record<K, Buffer | undefined>;
  const problems = [];
  for (const [key, file] of Object.entries(files) as [K, { path: string; kind: PemKind } | undefined][]) {
    if (file === undefined) continue;
    const problem = checkPemFile(file.path, file.kind);
    if (problem !== undefined) {
      problems.push({ path: `${section}.${key}`, message: problem });
      continue;
    }
    out[key] = readFileSync(file.path);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

const pem = (path: string | undefined, kind: PemKind) => (path === undefined ? undefined : { path, kind });

/**
 * Server credentials from a `grpc.tls` section, read now. `section` names the keys in errors.
 * - `none`: TLS, no client certificate asked for;
 * - `require`: grpc-js's createSsl with checkClientCertificate: a client without a certificate
 *   signed by `caFile` fails the handshake;
 * - `request`: a client certificate is asked for but not required; a call's peer certificate is
 *   then known only when it chains to `caFile` (grpc-js `getAuthContext()`).
 */
export function serverCredentialsFromConfig(tls: GrpcServerTlsConfig, section = 'grpc.tls'): ServerCredentials {
  const f = readFiles(section, { certFile: pem(tls.certFile, 'certificate'), keyFile: pem(tls.keyFile, 'private key'), caFile: pem(tls.caFile, 'certificate') });
  const pair = { cert_chain: f.certFile!, private_key: f.keyFile! };
  if (tls.clientAuth === 'request') return new RequestClientCertificateCredentials(f.caFile!, pair);
  return ServerCredentials.createSsl(f.caFile ?? null, [pair], tls.clientAuth === 'require');
}

/**
 * createSsl either requires a verified client certificate or asks for none; `request` needs the
 * Node TLS options in between (ask, verify what is presented, do not reject the connection).
 */
class RequestClientCertificateCredentials extends ServerCredentials {
  constructor(ca: Buffer, pair: { cert_chain: Buffer; private_key: Buffer }) {
    const ciphers = process.env['GRPC_SSL_CIPHER_SUITES'];
    super({ requestCert: true, rejectUnauthorized: false, ...(ciphers ? { ciphers } : {}) }, { ca, cert: pair.cert_chain, key: pair.private_key });
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

/** Channel credentials from a `grpc.clientTls` section, read now. `section` names the keys in errors. */
export function clientCredentialsFromConfig(tls: GrpcClientTlsConfig, section = 'grpc.clientTls'): ChannelCredentials {
  const f = readFiles(section, { caFile: pem(tls.caFile, 'certificate'), certFile: pem(tls.certFile, 'certificate'), keyFile: pem(tls.keyFile, 'private key') });
  const override = tls.serverNameOverride;
  return grpcCredentials.createSsl(
    f.caFile!,
    f.keyFile ?? null,
    f.certFile ?? null,
    // Replaces Node's check of the address's host name; the chain is still verified against caFile.
    override === undefined ? undefined : { checkServerIdentity: (_host, cert) => checkServerIdentity(override, cert) },
  );
}

/**
 * The process's security for outgoing platform calls from its `grpc` section: credentials from
 * `clientTls`, or nothing (plaintext) when it is unset. For `setDefaultClientSecurity`.
 */
export function clientSecurityFromConfig(grpc: { clientTls?: GrpcClientTlsConfig | undefined }): ClientSecurity {
  return grpc.clientTls === undefined ? {} : { credentials: clientCredentialsFromConfig(grpc.clientTls) };
}
