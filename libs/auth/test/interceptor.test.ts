import { Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { createGrpcServer, createLogger, tenantFromMetadata, unary, type GrpcServer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { healthStatus } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator, accessFor, authInterceptor, generateApiKey, issueServiceToken, principalOf, type CredentialSource, type StoredCredential } from '../src/index.js';

const SECRET = Buffer.from('interceptor-test-internal-secret-0123456789');
const logger = createLogger({ service: 'auth-test', level: 'silent' });

/** The key store's port, filled by the test (the services' stores are tested in fusion). */
class Keys implements CredentialSource {
  readonly byId = new Map<string, StoredCredential>();
  failing = false;
  async lookup(keyId: string) {
    if (this.failing) throw new Error('store down');
    return this.byId.get(keyId);
  }
  add(tenant: string, scopes: StoredCredential['scopes']): string {
    const k = generateApiKey();
    this.byId.set(k.keyId, { keyId: k.keyId, tenant, scopes, secretSha256: k.secretSha256, expiresAt: undefined, revokedAt: undefined, tenantState: 'active' });
    return k.key;
  }
}

/**
 * The interceptor on a real gRPC server (createGrpcServer): a Predict handler that answers with
 * what it sees (the tenant from metadata, whether a credential reached it, the principal's kind).
 */
describe('authInterceptor on a real gRPC server', () => {
  const keys = new Keys();
  let server: GrpcServer;
  let client: v1.InferenceServiceClient;
  let address: string;

  beforeAll(async () => {
    const authenticator = new Authenticator({ credentials: keys, internalSecret: SECRET, cacheTtlMs: 1 });
    server = createGrpcServer({
      config: { host: '127.0.0.1', port: 0, maxReceiveMessageBytes: 1 << 20, maxSendMessageBytes: 1 << 20, requireDeadline: false, drainTimeoutMs: 500 },
      logger,
      // Feedback is taken out of the table here, to see a method without a rule refused.
      interceptors: [authInterceptor({ authenticator, logger, accessFor: (path) => (path.endsWith('/Feedback') ? undefined : accessFor(path)) })],
      services: [
        {
          definition: v1.InferenceServiceService,
          implementation: {
            predict: unary<v1.PredictRequest, v1.PredictResponse>(async (_req, ctx) => ({
              prediction: v1.Prediction.fromPartial({
                label: tenantFromMetadata(ctx.metadata),
                predictionId: `${principalOf(ctx.metadata)?.kind}:${ctx.metadata.get('authorization').length}`,
              }),
            })),
          } as unknown as v1.InferenceServiceServer,
        },
      ],
    });
    address = (await server.start()).address;
    client = new v1.InferenceServiceClient(address, credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await server?.drain();
  });

  const predict = (md: Record<string, string>) =>
    new Promise<v1.PredictResponse>((resolve, reject) => {
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(md)) metadata.set(k, v);
      client.predict(v1.PredictRequest.fromPartial({ userId: 'u' }), metadata, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e: ServiceError) => `${status[e.code]}: ${e.details}`);

  it("makes the key's tenant the call's, whatever the caller sent, and keeps the credential from the handler", async () => {
    const key = keys.add('acme', ['predict']);
    const res = await predict({ authorization: `Bearer ${key}`, 'x-aimass-tenant': 'someone-else' });
    expect(res.prediction?.label).toBe('acme');
    expect(res.prediction?.predictionId).toBe('api-key:0');
  });

  it('refuses a platform service token where the table does not open the method to services', async () => {
    // (Where it does, e.g. personal-model's Score, the forwarded tenant is kept: see the fusion matrix test.)
    expect(await codeOf(predict({ authorization: `Bearer ${issueServiceToken(SECRET, 'fusion')}`, 'x-aimass-tenant': 'acme' }))).toMatch(
      /^PERMISSION_DENIED: \/aimass.v1.InferenceService\/Predict is not open to platform service tokens/,
    );
  });

  it('refuses missing credentials, a missing scope, and answers UNAVAILABLE when the key store cannot', async () => {
    expect(await codeOf(predict({ 'x-aimass-tenant': 'acme' }))).toMatch(/^UNAUTHENTICATED: credentials required/);
    expect(await codeOf(predict({ authorization: `Bearer ${keys.add('acme', ['feedback'])}` }))).toMatch(/^PERMISSION_DENIED: API key \w+ lacks the "predict" scope/);
    const key = keys.add('acme', ['predict']);
    keys.failing = true;
    try {
      expect(await codeOf(predict({ authorization: `Bearer ${key}` }))).toMatch(/^UNAVAILABLE: authentication is unavailable/);
    } finally {
      keys.failing = false;
    }
  });

  it('refuses a method missing from the access table (fail closed), and leaves health open', async () => {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${keys.add('acme', ['predict', 'feedback', 'consent', 'admin'])}`);
    const feedback = new Promise((resolve, reject) =>
      client.feedback(v1.FeedbackRequest.fromPartial({}), metadata, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect(await codeOf(feedback)).toMatch(/^PERMISSION_DENIED: \/aimass.v1.InferenceService\/Feedback has no access rule/);
    expect(await healthStatus(address, '')).toBe('SERVING');
  });
});
