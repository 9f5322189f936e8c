import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { issueServiceToken } from '@aimass/auth';
import { createLogger } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { AiMassClient, PrivacyClient, TenantAdminClient, TrainingAdminClient, UnauthenticatedError, UnavailableError } from '@aimass/sdk';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { EMBEDDED_INTERNAL_SECRET_FILE } from '../src/auth.js';
import { runnerConfigSchema } from '../src/config.js';
import { embeddedServices } from '../src/registry.js';
import { startPlatform, type RunningPlatform } from '../src/runner.js';
import { OPERATOR_SHA256, OPERATOR_TOKEN, addToyGeneralModel } from './support.js';

const TENANT = 'acme';
const SPAM = 'click here to claim your free prize offer now';

/** PersonalModelService/GetModel with the given bearer; resolves with the status it ended with. */
function getModel(address: string, bearer: string): Promise<{ code: grpc.status; details: string }> {
  const client = new v1.PersonalModelServiceClient(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${bearer}`);
  md.set('x-aimass-tenant', TENANT);
  return new Promise<{ code: grpc.status; details: string }>((resolve) =>
    client.getModel(v1.GetModelRequest.fromPartial({ userPseudonym: 'a'.repeat(32) }), md, { deadline: Date.now() + 10_000 }, (err) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' }),
    ),
  ).finally(() => client.close());
}

/** GeneralModelService/Classify with the given bearer (none when undefined); resolves with its status. */
function classify(address: string, bearer: string | undefined): Promise<{ code: grpc.status; details: string }> {
  const client = new v1.GeneralModelServiceClient(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  if (bearer !== undefined) md.set('authorization', `Bearer ${bearer}`);
  const request = v1.ClassifyRequest.fromPartial({ inputs: [{ kind: { $case: 'text', value: SPAM } }] });
  return new Promise<{ code: grpc.status; details: string }>((resolve) =>
    client.classify(request, md, { deadline: Date.now() + 10_000 }, (err) => resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' })),
  ).finally(() => client.close());
}

/**
 * The one-process mode as `npm start` wires it (the registry's services: privacy, general-model,
 * personal-model, fusion, the updater), with AIMASS_AUTH__MODE=api-keys and nothing else but the
 * operator's token hash: the runner's defaults (generated internal secret, fusion as the
 * credential service) must make API keys work end to end.
 */
describe('one-process mode with API keys (integration)', () => {
  let dir: TempDir;
  let platform: RunningPlatform;
  const addressOf = (name: string) => platform.services.find((s) => s.name === name)!.address;
  const closers: Array<{ close(): void }> = [];

  beforeAll(async () => {
    dir = await tempDir('aimass-runner-keys-');
    await addToyGeneralModel(join(dir.path, 'models'));
    const config = runnerConfigSchema.parse({ grpc: { port: 0 }, log: { level: 'error' }, runner: { dataDir: dir.path, servicePortBase: 0, trainDefaultModel: false } });
    platform = await startPlatform(config, createLogger({ service: 'runner-test', level: 'silent' }), embeddedServices(config), {
      env: { AIMASS_AUTH__MODE: 'api-keys', AIMASS_AUTH__OPERATOR_TOKEN_SHA256: OPERATOR_SHA256 },
    });
  });

  afterAll(async () => {
    for (const c of closers) c.close();
    if (platform) {
      await platform.server.drain();
      await platform.stop();
    }
    await dir?.remove();
  });

  const client = <C extends { close(): void }>(c: C): C => {
    closers.push(c);
    return c;
  };

  it('refuses a Predict without a key; the operator creates a tenant and a key; Predict, consent, feedback and training work with the key', { timeout: 90_000 }, async () => {
    const anonymous = client(new AiMassClient({ address: addressOf('fusion'), tenant: TENANT, defaultDeadlineMs: 10_000 }));
    await expect(anonymous.predict('alice', SPAM)).rejects.toBeInstanceOf(UnauthenticatedError);

    const admin = client(new TenantAdminClient({ address: addressOf('fusion'), apiKey: OPERATOR_TOKEN, defaultDeadlineMs: 10_000 }));
    await admin.createTenant(TENANT, { displayName: 'Acme' });
    const { secret } = await admin.createApiKey(TENANT, { name: 'backend', scopes: ['predict', 'feedback', 'consent', 'admin'] });
    expect(secret).toMatch(/^amk_/);

    // general-model, privacy and the updater verify the key at fusion's CredentialService, whose
    // address the runner gave them before fusion was listening.
    expect(grpc.status[(await classify(addressOf('general-model'), undefined)).code]).toBe('UNAUTHENTICATED');
    const classified = await classify(addressOf('general-model'), secret);
    expect(grpc.status[classified.code], classified.details).toBe('OK');
    const privacy = client(new PrivacyClient({ address: addressOf('privacy'), tenant: TENANT, apiKey: secret, defaultDeadlineMs: 10_000 }));
    await privacy.grant('alice', ['personalization', 'training'], { policyVersion: 'v1', source: 'runner-test' });
    // privacy answers consent reads once it has read the tenants' stored consent defaults from
    // fusion, which starts after it: until then they are UNAVAILABLE and Predict does not personalize.
    await waitUntil(
      () => privacy.getConsent('alice').then(() => true, (err: unknown) => (err instanceof UnavailableError ? false : Promise.reject(err))),
      "privacy to read the tenants' consent defaults from fusion",
      15_000,
      100,
    );

    const inference = client(new AiMassClient({ address: addressOf('fusion'), tenant: TENANT, apiKey: secret, defaultDeadlineMs: 10_000 }));
    const first = await inference.predict('alice', SPAM);
    expect(Object.keys(first.probabilities).sort()).toEqual(['ham', 'spam']);
    expect(first.provenance.models.map((m) => m.role)).toContain('general');
    // Consent granted, no model yet: fusion asked personal-model (with its service token) and found none.
    expect(first.provenance.fallbacks.map((f) => f.reason)).toEqual(['no_personal_model']);

    // Feedback -> the updater (bus) -> personal-model, each hop with service tokens; then the personal model is used.
    for (let i = 0; i < 3; i++) await inference.feedback({ userId: 'alice', predictionId: first.predictionId, label: 'ham', idempotencyKey: `alice-${i}` });
    const training = client(new TrainingAdminClient({ address: addressOf('updater'), tenant: TENANT, apiKey: secret, defaultDeadlineMs: 10_000 }));
    await waitUntil(async () => ((await training.trainingState('alice')).user?.currentVersion ?? 0) > 0, "alice's personal model", 30_000, 100);
    const second = await inference.predict('alice', SPAM);
    expect(second.provenance.fallbacks).toEqual([]);
    expect(second.provenance.models.map((m) => m.role)).toEqual(expect.arrayContaining(['general', 'personal']));
  });

  it('personal-model (internal) refuses the API key and the operator token, and takes the run\'s service tokens', async () => {
    const admin = client(new TenantAdminClient({ address: addressOf('fusion'), apiKey: OPERATOR_TOKEN, defaultDeadlineMs: 10_000 }));
    const { secret } = await admin.createApiKey(TENANT, { name: 'full', scopes: ['predict', 'feedback', 'consent', 'admin'] });
    expect(grpc.status[(await getModel(addressOf('personal-model'), secret)).code]).toBe('UNAUTHENTICATED');
    // The operator is known to every service (its hash is in the auth section) but may not call internal RPCs.
    expect(['UNAUTHENTICATED', 'PERMISSION_DENIED']).toContain(grpc.status[(await getModel(addressOf('personal-model'), OPERATOR_TOKEN)).code]);

    const internalSecret = (await readFile(join(dir.path, EMBEDDED_INTERNAL_SECRET_FILE), 'utf8')).trim();
    const token = issueServiceToken(Buffer.from(internalSecret, 'utf8'), 'fusion');
    const withToken = await getModel(addressOf('personal-model'), token);
    // Authenticated: the user simply has no model.
    expect(grpc.status[withToken.code], withToken.details).toBe('NOT_FOUND');
  });
});
