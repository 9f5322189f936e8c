import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const CANDIDATES = ['/usr/bin/openssl', '/usr/local/bin/openssl', '/bin/openssl'];

/** The openssl command: `AIMASS_OPENSSL_BIN`, else the usual install locations. */
export function opensslBinary(): string {
  const fromEnv = process.env['AIMASS_OPENSSL_BIN'];
  if (fromEnv) return fromEnv;
  const found = CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new Error('openssl not found: the TLS tests make their certificates with it; install it (Debian: apt-get install openssl) or set AIMASS_OPENSSL_BIN');
  }
  return found;
}

/** PEM files of one certificate and its private key. */
export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** The platform's test CA: it signs `server` and `client`. */
  ca: CertificateFiles;
  /** SAN localhost and 127.0.0.1; usable for serverAuth and clientAuth (one identity per service process). */
  server: CertificateFiles;
  /** clientAuth only, CN aimass-test-client. */
  client: CertificateFiles;
  /** An unrelated CA, for negative tests: a peer that trusts it, or a client it signed, must be refused. */
  otherCa: CertificateFiles;
  /** clientAuth, signed by `otherCa`. */
  otherClient: CertificateFiles;
}

// One config for every step: `req -x509` would otherwise add the system openssl.cnf's extensions,
// which differ between distributions.
const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/**
 * Makes a throw-away PKI in `dir` with the openssl command line (EC P-256 keys, valid 30 days):
 * a CA, a server certificate for localhost/127.0.0.1, a client certificate, and an unrelated CA
 * with a client of its own for negative tests. Takes about 100 ms.
 */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const openssl = opensslBinary();
  await mkdir(dir, { recursive: true });
  const cnf = join(dir, 'openssl.cnf');
  await writeFile(cnf, OPENSSL_CNF);
  const files = (name: string): CertificateFiles => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) });
  const exec = async (args: string[]) => {
    try {
      await run(openssl, args, { env: { ...process.env, OPENSSL_CONF: cnf } });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
  };
  const newKey = (out: string) => exec(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out]);

  const makeCa = async (name: string, cn: string) => {
    const f = files(name);
    await newKey(f.key);
    await exec(['req', '-config', cnf, '-new', '-x509', '-key', f.key, '-out', f.cert, '-days', '30', '-subj', `/CN=${cn}`, '-extensions', 'ca']);
    return f;
  };
  const issue = async (name: string, cn: string, ca: CertificateFiles, profile: 'server' | 'client') => {
    const f = files(name);
    const csr = join(dir, `${name}.csr`);
    await newKey(f.key);
    await exec(['req', '-config', cnf, '-new', '-key', f.key, '-out', csr, '-subj', `/CN=${cn}`]);
    await exec([
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomSerial()}`,
      '-days', '30', '-out', f.cert, '-extfile', cnf, '-extensions', profile,
    ]);
    return f;
  };

  const [ca, otherCa] = await Promise.all([makeCa('ca', 'aimass-test-ca'), makeCa('other-ca', 'unrelated-test-ca')]);
  const [server, client, otherClient] = await Promise.all([
    issue('server', 'localhost', ca, 'server'),
    issue('client', 'aimass-test-client', ca, 'client'),
    issue('other-client', 'aimass-test-client', otherCa, 'client'),
  ]);
  return { dir, ca, server, client, otherCa, otherClient };
}

function randomSerial(): string {
  // Positive 63-bit serials: unique per run without a serial file.
  const bytes = randomBytes(8);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}
