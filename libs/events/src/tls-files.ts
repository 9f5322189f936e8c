import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

// The same checks as @aimass/platform's pemFileSchema (this package does not depend on the
// platform): a TLS file that is missing or wrong fails the start, naming its key and path,
// instead of every connect attempt.

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, not a file';
  return (err as Error).message;
}

/** A problem with the PEM file at `path`, or undefined when it holds a `kind`. */
export function pemFileProblem(path: string, kind: 'certificate' | 'private key'): string | undefined {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    return `cannot read "${path}": ${readReason(err)}`;
  }
  if (kind === 'private key') {
    try {
      createPrivateKey(pem);
      return undefined;
    } catch (err) {
      return `"${path}" holds no usable PEM private key (unencrypted PKCS#8, PKCS#1 or SEC1 expected): ${(err as Error).message}`;
    }
  }
  const blocks = pem.toString('latin1').match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) return `"${path}" holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`;
  try {
    for (const b of blocks) new X509Certificate(b);
    return undefined;
  } catch (err) {
    return `"${path}" holds an invalid certificate: ${(err as Error).message}`;
  }
}

/** Whether the key belongs to the first certificate of `certFile`; undefined when either is unusable. */
export function keyMatchesCertificate(certFile: string, keyFile: string): boolean | undefined {
  try {
    const first = readFileSync(certFile).toString('latin1').match(CERT_BLOCK)?.[0];
    if (first === undefined) return undefined;
    return new X509Certificate(first).checkPrivateKey(createPrivateKey(readFileSync(keyFile)));
  } catch {
    return undefined;
  }
}

/** A config key holding the path of a PEM file, checked when the configuration is loaded. */
export function pemFile(kind: 'certificate' | 'private key') {
  const expected = `expected the path of a PEM ${kind} file`;
  return z
    .string({ error: (iss) => (iss.input === undefined ? undefined : expected) })
    .min(1, { error: expected })
    .superRefine((path, ctx) => {
      if (path.length === 0) return;
      const problem = pemFileProblem(path, kind);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    });
}
