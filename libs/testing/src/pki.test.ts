import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, tempDir, type TempDir, type TestPki } from './index.js';

const cert = (file: string) => new X509Certificate(readFileSync(file));

describe('makeTestPki', () => {
  let dir: TempDir;
  let pki: TestPki;
  beforeAll(async () => {
    dir = await tempDir('aimass-pki-');
    pki = await makeTestPki(dir.path);
  });
  afterAll(() => dir?.remove());

  it('issues a server certificate for localhost and 127.0.0.1 signed by the CA, with its key', () => {
    const ca = cert(pki.ca.cert);
    const server = cert(pki.server.cert);
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkPrivateKey(createPrivateKey(readFileSync(pki.server.key)))).toBe(true);
    expect(server.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
  });

  it('issues a client certificate from the CA and another from an unrelated CA', () => {
    const ca = cert(pki.ca.cert);
    const client = cert(pki.client.cert);
    const other = cert(pki.otherClient.cert);
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(other.verify(ca.publicKey)).toBe(false);
    expect(other.verify(cert(pki.otherCa.cert).publicKey)).toBe(true);
    expect(client.checkPrivateKey(createPrivateKey(readFileSync(pki.otherClient.key)))).toBe(false);
  });

  it('says how to get openssl when it is missing', async () => {
    const saved = process.env['AIMASS_OPENSSL_BIN'];
    process.env['AIMASS_OPENSSL_BIN'] = '/nonexistent/openssl';
    try {
      await expect(makeTestPki(`${dir.path}/missing`)).rejects.toThrow(/openssl/);
    } finally {
      if (saved === undefined) delete process.env['AIMASS_OPENSSL_BIN'];
      else process.env['AIMASS_OPENSSL_BIN'] = saved;
    }
  });
});
