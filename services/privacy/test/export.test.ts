import { join } from 'node:path';
import { Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { startPersonalModel, type RunningPersonalModel } from '@aimass/personal-model';
import { TENANT_METADATA_KEY, createLogger } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { SlowProxy, freePort, tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PersonalModelExportSource } from '../src/adapters/export-peers.js';
import { exportedModelVersion, type ExportDocument } from '../src/domain/export.js';
import { P, S, failure, pseudonymizer, setRequest, startStack, type Stack } from './support/stack.js';

const T = 't1';
const GENERAL = { name: 'general', version: '1' };

/** One training example as the updater sends it (general output of an 8-dim embedding, no sparse features). */
function example(label: 'ham' | 'spam', seed: number): v1.TrainingExample {
  const p = label === 'spam' ? 0.9 : 0.1;
  return {
    general: { model: GENERAL, logits: [Math.log(1 - p), Math.log(p)], probabilities: [1 - p, p], embedding: Array.from({ length: 8 }, (_, i) => Math.sin(seed + i)) },
    sparseFeatures: undefined,
    label,
    weight: 0,
    sourceEventId: '',
    occurredAt: undefined,
    sourceSequence: 0,
  };
}

function train(client: v1.PersonalModelServiceClient, userPseudonym: string, expectedVersion: number, labels: Array<'ham' | 'spam'>): Promise<v1.TrainResponse> {
  const md = new Metadata();
  md.set(TENANT_METADATA_KEY, T);
  return new Promise((resolve, reject) =>
    client.train(
      { userPseudonym, examples: labels.map((l, i) => example(l, expectedVersion * 10 + i)), idempotencyKey: '', expectedVersion },
      md,
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res?: v1.TrainResponse) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

const exportRequest = (userId: string, format = v1.ExportFormat.EXPORT_FORMAT_JSON): v1.ExportRequest => ({ userId, format });

function jsonOf(res: v1.ExportResponse): ExportDocument {
  if (res.content?.$case !== 'json') throw new Error(`expected json content, got ${res.content?.$case}`);
  return JSON.parse(res.content.value.toString('utf8')) as ExportDocument;
}

/**
 * Export against a real personal-model (in-process, SQLite). The updater cannot run in this
 * package's tests (it depends on privacy), so the feedback part is tested for its failures here and
 * the whole document end to end in test-e2e.
 */
describe('Export (integration)', () => {
  let stack: Stack;
  let dir: TempDir;
  let pmStore: DocumentStore;
  let pm: RunningPersonalModel;
  let pmClient: v1.PersonalModelServiceClient;
  let slow: SlowProxy;
  /** Nothing listens there. */
  let deadAddress: string;

  beforeAll(async () => {
    dir = await tempDir('privacy-export-');
    pmStore = await openSqliteStore({ path: join(dir.path, 'personal-model.sqlite') });
    pm = await startPersonalModel({ grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 } }, createLogger({ service: 'personal-model', level: 'silent' }), { store: pmStore });
    pmClient = new v1.PersonalModelServiceClient(pm.address, credentials.createInsecure());
    slow = await SlowProxy.start(pm.address);
    deadAddress = `127.0.0.1:${await freePort()}`;
    stack = await startStack({ export: { personalModelAddress: pm.address, updaterAddress: deadAddress }, erasure: { sweepIntervalMs: 0, graceMs: 0 } });
  });
  afterAll(async () => {
    pmClient?.close();
    await stack?.stop();
    await slow?.close();
    await pm?.stop();
    await pmStore?.close();
    await dir?.remove();
  });

  it('reads every stored version of the user’s personal model with its metadata, across pages', async () => {
    const alice = pseudonymizer.pseudonymize(T, 'alice');
    await train(pmClient, alice, 0, ['spam', 'spam']);
    await train(pmClient, alice, 1, ['ham']);
    await train(pmClient, alice, 2, ['spam', 'ham', 'spam']);
    const source = new PersonalModelExportSource(
      { service: 'personal-model', setting: 'privacy.export.personalModelAddress', variable: 'AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS', resolve: () => pm.address },
      { maxPages: 10, pageSize: 1 },
    );
    try {
      const versions = await source.versions({ tenant: T, userPseudonym: alice }, { deadline: Date.now() + 5_000 });
      const exported = versions.map(exportedModelVersion);
      expect(exported.map((v) => [v.version, v.current, v.exampleCount, v.kind])).toEqual([
        [3, true, 6, 'train'],
        [2, false, 3, 'train'],
        [1, false, 2, 'train'],
      ]);
      for (const v of exported) {
        expect(v.generalModel).toEqual(GENERAL);
        expect(v.model?.version).toBe(String(v.version));
        expect(Date.parse(v.createdAt!)).toBeGreaterThan(Date.now() - 60_000);
      }
      // A user without a model holds nothing there.
      expect(await source.versions({ tenant: T, userPseudonym: pseudonymizer.pseudonymize(T, 'nobody') }, { deadline: Date.now() + 5_000 })).toEqual([]);
      // Another tenant's user of the same pseudonym has no model either.
      expect(await source.versions({ tenant: 't2', userPseudonym: alice }, { deadline: Date.now() + 5_000 })).toEqual([]);
      // The paging guard: more pages than allowed is an error, not a cut-short list.
      const guarded = new PersonalModelExportSource(
        { service: 'personal-model', setting: 'privacy.export.personalModelAddress', variable: 'AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS', resolve: () => pm.address },
        { maxPages: 2, pageSize: 1 },
      );
      await expect(guarded.versions({ tenant: T, userPseudonym: alice }, { deadline: Date.now() + 5_000 })).rejects.toThrow(/more than 2 pages/);
      guarded.close();
    } finally {
      source.close();
    }
  });

  it('answers UNAVAILABLE naming the updater when it cannot be reached: never a document without the feedback', async () => {
    await stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const started = Date.now();
    const err = await failure(stack.call('export', T, exportRequest('alice'), { deadlineMs: 5_000 }));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toContain(`updater at ${deadAddress}`);
    expect(err.details).toMatch(/ExportFeedback.*retry Export/);
    // personal-model answered: only the updater is named.
    expect(err.details).not.toContain('personal-model');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stack.logs.text()).not.toContain('"alice"');
  });

  it('answers FAILED_PRECONDITION naming the variable of each address that is not configured', async () => {
    const noUpdater = await stack.replica({ export: { personalModelAddress: pm.address } });
    const one = await failure(noUpdater.call('export', T, exportRequest('alice')));
    expect(one.code).toBe(status.FAILED_PRECONDITION);
    expect(one.details).toContain('AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS');
    expect(one.details).toContain('privacy.export.updaterAddress');
    expect(one.details).not.toContain('PERSONAL_MODEL');

    const neither = await stack.replica();
    const both = await failure(neither.call('export', T, exportRequest('alice')));
    expect(both.code).toBe(status.FAILED_PRECONDITION);
    expect(both.details).toContain('AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS');
    expect(both.details).toContain('AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS');
  });

  it('answers UNAVAILABLE naming a slow personal-model before the caller’s deadline', async () => {
    const behindSlowLink = await stack.replica({ export: { personalModelAddress: slow.address, updaterAddress: deadAddress } });
    slow.delayMs = 3_000;
    try {
      const started = Date.now();
      const err = await failure(behindSlowLink.call('export', T, exportRequest('alice'), { deadlineMs: 1_500 }));
      const took = Date.now() - started;
      // Answered by privacy, in time, naming both parts it could not get.
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toContain(`personal-model at ${slow.address} did not answer within the call deadline`);
      expect(err.details).toContain(`updater at ${deadAddress}`);
      expect(took).toBeLessThan(1_500);
    } finally {
      slow.delayMs = 0;
    }
  });

  it('exports only the erasure record for an erased user, as JSON and as a Struct, without asking anyone', async () => {
    const bea = pseudonymizer.pseudonymize(T, 'bea');
    await stack.call('setConsent', T, setRequest('bea', P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_GRANTED));
    await train(pmClient, bea, 0, ['spam']);
    const { erasureId } = await stack.call('erase', T, { userId: 'bea', reason: 'gdpr-art17', idempotencyKey: '' });
    const { receipt } = await stack.call('getErasureReceipt', T, { erasureId });

    // The updater is unreachable and personal-model still holds the model (no bus here): neither is asked.
    const res = await stack.call('export', T, exportRequest('bea'));
    const doc = jsonOf(res);
    expect(Object.keys(doc).sort()).toEqual(['erasure', 'generatedAt', 'user']);
    expect(doc.user).toEqual({ pseudonym: bea });
    expect(Date.parse(doc.generatedAt)).toBe(res.generatedAt!.getTime());
    expect(doc.erasure).toEqual({
      erasureId,
      status: 'pending',
      reason: 'gdpr-art17',
      requestedAt: receipt!.requestedAt!.toISOString(),
      keyDestroyedAt: receipt!.keyDestroyedAt!.toISOString(),
      completedAt: null,
      services: [
        { service: 'privacy', status: 'completed', confirmedAt: receipt!.confirmations[0]!.confirmedAt!.toISOString(), itemsDeleted: 3, detail: '' },
        { service: 'personal-model', status: 'pending', confirmedAt: null, itemsDeleted: 0, detail: '' },
        { service: 'updater', status: 'pending', confirmedAt: null, itemsDeleted: 0, detail: '' },
        { service: 'fusion', status: 'pending', confirmedAt: null, itemsDeleted: 0, detail: '' },
      ],
    });
    // The raw user id appears nowhere in it: privacy never kept it.
    expect(JSON.stringify(doc)).not.toContain('"bea"');

    const structured = await stack.call('export', T, exportRequest('bea', v1.ExportFormat.EXPORT_FORMAT_STRUCTURED));
    if (structured.content?.$case !== 'document') throw new Error('expected a Struct document');
    expect({ ...structured.content.value, generatedAt: doc.generatedAt }).toEqual(doc);

    // Even a deployment without the peers' addresses exports an erased user.
    const unconfigured = await stack.replica();
    expect(jsonOf(await unconfigured.call('export', T, exportRequest('bea'))).erasure?.erasureId).toBe(erasureId);
  });

  it('refuses bad input like the other RPCs', async () => {
    for (const [err, pattern, field] of [
      [await failure(stack.call('export', T, exportRequest(''))), /user_id is required/, 'user_id'],
      [await failure(stack.call('export', T, exportRequest('u'.repeat(257)))), /user_id is 257 bytes/, 'user_id'],
      [await failure(stack.call('export', T, { userId: 'alice', format: 9 as v1.ExportFormat })), /format 9 is not a known export format/, 'format'],
    ] as const) {
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(pattern);
      expect(err.metadata.get('invalid-argument-field')).toEqual([field]);
    }
    expect((await failure(stack.call('export', T, exportRequest('alice'), { noTenant: true }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await failure(stack.call('export', T, exportRequest('alice'), { noDeadline: true }))).code).toBe(status.INVALID_ARGUMENT);
  });
});
