// TLS and mTLS on a real personal-model server (issue 7): certificates made by openssl for the
// run (libs/testing makeTestPki), real grpc-js channels, the platform's createClient.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InterceptingCall, Metadata, credentials, status, type ChannelCredentials, type ServerUnaryCall, type ServiceError, type sendUnaryData } from '@grpc/grpc-js';
import {
  ConfigError,
  TENANT_METADATA_KEY,
  baseConfigSchema,
  callUnary,
  clientCredentialsFromConfig,
  clientSecurityFromConfig,
  createClient,
  createGrpcServer,
  loadConfig,
  resetDefaultClientSecurity,
  setDefaultClientSecurity,
  type GrpcServer,
} from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { makeTestPki, tempDir, type TempDir, type TestPki } from '@aimass/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPersonalModel, type RunningPersonalModel } from '../src/service.js';
import { pseudonymOf, quietLogger } from './support/harness.js';

const read = (file: string) => readFileSync(file);

let dir: TempDir;
let pki: TestPki;
let store: DocumentStore;

beforeAll(async () => {
  dir = await tempDir('pm-tls-');
  pki = await makeTestPki(join(dir.path, 'pki'));
  store = await openSqliteStore({ path: join(dir.path, 'personal-model.sqlite') });
});
afterAll(async () => {
  await store?.close();
  await dir?.remove();
});

async function startWithTls(tls: { certFile: string; keyFile: string; caFile?: string; clientAuth?: 'none' | 'request' | 'require' }): Promise<RunningPersonalModel> {
  return startPersonalModel({ grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 1_000, tls } }, quietLogger().logger, { store });
}

/** GetModel for a user without a model: NOT_FOUND proves the call reached the service over the channel. */
async function getModel(client: v1.PersonalModelServiceClient): Promise<{ code: status; details: string }> {
  const metadata = new Metadata();
  metadata.set(TENANT_METADATA_KEY, 'acme');
  try {
    await callUnary(client.getModel.bind(client), { userPseudonym: pseudonymOf('nobody'), version: 0, includeParameters: false }, { metadata, deadline: Date.now() + 3_000 });
    return { code: status.OK, details: '' };
  } catch (err) {
    // Domain errors from callUnary keep nothing of the code; the raw channel error is what matters here.
    const e = err as Error & { name: string };
    const code = e.name === 'NotFoundError' ? status.NOT_FOUND : e.name === 'UnavailableError' ? status.UNAVAILABLE : status.UNKNOWN;
    return { code, details: e.message };
  }
}

function clientWith(address: string, creds: ChannelCredentials | undefined): v1.PersonalModelServiceClient {
  // No retries: a refused handshake must show up as the first call's UNAVAILABLE.
  return createClient(v1.PersonalModelServiceClient, { address, credentials: creds });
}

const trusting = (ca: string, identity?: { cert: string; key: string }) =>
  credentials.createSsl(read(ca), identity ? read(identity.key) : null, identity ? read(identity.cert) : null);

describe('personal-model over TLS (clientAuth none)', () => {
  let service: RunningPersonalModel;
  const clients: v1.PersonalModelServiceClient[] = [];
  const client = (creds: ChannelCredentials | undefined, address = service.address) => {
    const c = clientWith(address, creds);
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    service = await startWithTls({ certFile: pki.server.cert, keyFile: pki.server.key });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await service?.stop();
  });

  it('answers a client that trusts the CA', async () => {
    expect(await getModel(client(trusting(pki.ca.cert)))).toMatchObject({ code: status.NOT_FOUND });
  });

  it('refuses a plaintext client and a client that trusts another CA', async () => {
    expect(await getModel(client(credentials.createInsecure()))).toMatchObject({ code: status.UNAVAILABLE });
    const other = await getModel(client(trusting(pki.otherCa.cert)));
    expect(other.code).toBe(status.UNAVAILABLE);
    expect(other.details).toMatch(/certificate/i);
  });

  it('checks the server name: the certificate is for localhost and 127.0.0.1, serverNameOverride replaces the address', async () => {
    const port = service.address.split(':').pop()!;
    expect(await getModel(client(trusting(pki.ca.cert), `localhost:${port}`))).toMatchObject({ code: status.NOT_FOUND });
    const wrongName = clientCredentialsFromConfig({ caFile: pki.ca.cert, serverNameOverride: 'personal-model.other.example' });
    const refused = await getModel(client(wrongName));
    expect(refused.code).toBe(status.UNAVAILABLE);
    expect(refused.details).toMatch(/personal-model\.other\.example/);
    expect(await getModel(client(clientCredentialsFromConfig({ caFile: pki.ca.cert, serverNameOverride: 'localhost' })))).toMatchObject({ code: status.NOT_FOUND });
  });
});

describe('personal-model over mTLS (clientAuth require)', () => {
  let service: RunningPersonalModel;
  const clients: v1.PersonalModelServiceClient[] = [];
  const client = (creds: ChannelCredentials | undefined) => {
    const c = clientWith(service.address, creds);
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    service = await startWithTls({ certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.ca.cert, clientAuth: 'require' });
  });
  afterEach(() => resetDefaultClientSecurity());
  afterAll(async () => {
    for (const c of clients) c.close();
    await service?.stop();
  });

  it('answers a client with a certificate from the CA', async () => {
    expect(await getModel(client(trusting(pki.ca.cert, pki.client)))).toMatchObject({ code: status.NOT_FOUND });
  });

  it('refuses a client without a certificate, and one whose certificate another CA signed', async () => {
    expect(await getModel(client(trusting(pki.ca.cert)))).toMatchObject({ code: status.UNAVAILABLE });
    expect(await getModel(client(trusting(pki.ca.cert, pki.otherClient)))).toMatchObject({ code: status.UNAVAILABLE });
    expect(await getModel(client(credentials.createInsecure()))).toMatchObject({ code: status.UNAVAILABLE });
  });

  it("is called through createClient's process default, set from grpc.clientTls as a service main does", async () => {
    // Before: the default is plaintext, which this server refuses.
    expect(await getModel(client(undefined))).toMatchObject({ code: status.UNAVAILABLE });
    const config = loadConfig(baseConfigSchema, {
      env: {
        AIMASS_SERVICE_NAME: 'updater',
        AIMASS_GRPC__CLIENT_TLS__CA_FILE: pki.ca.cert,
        AIMASS_GRPC__CLIENT_TLS__CERT_FILE: pki.server.cert,
        AIMASS_GRPC__CLIENT_TLS__KEY_FILE: pki.server.key,
      },
    });
    setDefaultClientSecurity(clientSecurityFromConfig(config.grpc));
    // The service certificate (serverAuth and clientAuth) is the process's one identity.
    expect(await getModel(client(undefined))).toMatchObject({ code: status.NOT_FOUND });
    // An explicit credential still wins over the default.
    expect(await getModel(client(trusting(pki.ca.cert)))).toMatchObject({ code: status.UNAVAILABLE });
  });

  it("adds the default's interceptors to the call (a service token rides on the same default)", async () => {
    const seen: string[] = [];
    setDefaultClientSecurity({
      credentials: clientCredentialsFromConfig({ caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key }),
      interceptors: [
        (options, next) => {
          seen.push(options.method_definition.path);
          return new InterceptingCall(next(options));
        },
      ],
    });
    expect(await getModel(client(undefined))).toMatchObject({ code: status.NOT_FOUND });
    expect(seen).toEqual(['/aimass.v1.PersonalModelService/GetModel']);
  });
});

describe('clientAuth request', () => {
  let server: GrpcServer;
  let address: string;
  const clients: v1.PersonalModelServiceClient[] = [];
  beforeAll(async () => {
    const grpc = loadConfig(baseConfigSchema, {
      env: {
        AIMASS_SERVICE_NAME: 'probe',
        AIMASS_GRPC__HOST: '127.0.0.1',
        AIMASS_GRPC__PORT: '0',
        AIMASS_GRPC__TLS__CERT_FILE: pki.server.cert,
        AIMASS_GRPC__TLS__KEY_FILE: pki.server.key,
        AIMASS_GRPC__TLS__CA_FILE: pki.ca.cert,
        AIMASS_GRPC__TLS__CLIENT_AUTH: 'request',
      },
    }).grpc;
    // A handler that reports the peer certificate the server verified: what authentication sees.
    server = createGrpcServer({
      config: grpc,
      logger: quietLogger().logger,
      services: [
        {
          definition: v1.PersonalModelServiceService,
          implementation: {
            getModel: (call: ServerUnaryCall<v1.GetModelRequest, v1.GetModelResponse>, callback: sendUnaryData<v1.GetModelResponse>) => {
              const peer = call.getAuthContext().sslPeerCertificate;
              const details = peer ? `peer ${String(peer.subject.CN)} from ${String(peer.issuer.CN)}` : 'peer anonymous';
              callback({ code: status.NOT_FOUND, details } as Partial<ServiceError> as ServiceError);
            },
          },
        },
      ],
    });
    address = (await server.start()).address;
  });
  afterAll(() => {
    for (const c of clients) c.close();
    server?.forceShutdown();
  });
  const ask = (creds: ChannelCredentials) => {
    const c = clientWith(address, creds);
    clients.push(c);
    return getModel(c);
  };

  it('serves clients without a certificate, and knows the peer only when its certificate chains to caFile', async () => {
    expect((await ask(trusting(pki.ca.cert))).details).toBe('peer anonymous');
    expect((await ask(trusting(pki.ca.cert, pki.client))).details).toBe('peer aimass-test-client from aimass-test-ca');
    expect((await ask(trusting(pki.ca.cert, pki.otherClient))).details).toBe('peer anonymous');
  });
});

describe('TLS configuration with real certificates', () => {
  it('refuses a key that is not the certificate’s, naming the key and both paths', () => {
    let err: unknown;
    try {
      loadConfig(baseConfigSchema, {
        env: { AIMASS_SERVICE_NAME: 'svc', AIMASS_GRPC__TLS__CERT_FILE: pki.server.cert, AIMASS_GRPC__TLS__KEY_FILE: pki.client.key },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      { path: 'grpc.tls.keyFile', source: `AIMASS_GRPC__TLS__KEY_FILE="${pki.client.key}"`, message: `"${pki.client.key}" is not the private key of the certificate in "${pki.server.cert}"` },
    ]);
  });
});

describe('the service process with a TLS file missing', () => {
  const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
  const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
  beforeAll(() => {
    execFileSync('npx', ['tsc', '-b', 'tsconfig.lib.json'], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
  }, 180_000);

  it('exits 78 with the key and the path', async () => {
    const missing = join(dir.path, 'no-such-ca.crt');
    const env: Record<string, string | undefined> = {
      ...process.env,
      AIMASS_GRPC__HOST: '127.0.0.1',
      AIMASS_GRPC__PORT: '0',
      AIMASS_STORE__KIND: 'sqlite',
      AIMASS_STORE__PATH: join(dir.path, 'main.sqlite'),
      AIMASS_GRPC__TLS__CERT_FILE: pki.server.cert,
      AIMASS_GRPC__TLS__KEY_FILE: pki.server.key,
      AIMASS_GRPC__CLIENT_TLS__CA_FILE: missing,
    };
    delete env['AIMASS_CONFIG'];
    const exit = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [MAIN], { env, timeout: 30_000 }, (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }));
    });
    expect(exit.code).toBe(78);
    expect(exit.stderr).toContain(`grpc.clientTls.caFile (from AIMASS_GRPC__CLIENT_TLS__CA_FILE="${missing}"): cannot read "${missing}": file not found`);
  });
});
