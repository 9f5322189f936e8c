import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiMassClient, FailedPreconditionError, PrivacyClient, TrainingAdminClient } from '@aimass/sdk';
import { trainGeneral } from '@aimass/train-general';
import { freePort, NatsServer, tempDir, TestProcess, waitUntil, type TempDir } from '@aimass/testing';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { repositoryRoot } from '../src/index.js';

// The whole platform with consent enforced and personal data sealed with users' keys: the five
// services each their own process, on a real nats-server whose store is in the test's directory,
// so that after an erasure every byte the platform wrote can be searched.
const mains = {
  privacy: join(repositoryRoot, 'services/privacy/dist/main.js'),
  general: join(repositoryRoot, 'services/general-model/dist/main.js'),
  personal: join(repositoryRoot, 'services/personal-model/dist/main.js'),
  fusion: join(repositoryRoot, 'services/fusion/dist/main.js'),
  updater: join(repositoryRoot, 'services/updater/dist/main.js'),
};

const SECRET = 'e2e-privacy-pseudonym-secret-0123456789-abcdefgh';
const TENANT = 'acme';
const KEK = randomBytes(32).toString('base64');

/** Everything under `root`, recursively (SQLite files and their -wal/-shm, the JetStream store). */
async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Files under `root` containing `needle` as UTF-8 (or UTF-16LE, as a Windows-minded encoder might write). */
async function filesContaining(root: string, needle: string, skip: (path: string) => boolean): Promise<string[]> {
  const forms = [Buffer.from(needle, 'utf8'), Buffer.from(needle, 'utf16le')];
  const hits: string[] = [];
  for (const path of await filesUnder(root)) {
    if (skip(path)) continue;
    if ((await stat(path)).size === 0) continue;
    const bytes = await readFile(path);
    if (forms.some((f) => bytes.includes(f))) hits.push(path);
  }
  return hits;
}

describe('privacy across the platform: consent enforced, erasure with a receipt, crypto-shredding', () => {
  let dir: TempDir;
  let dataDir: string;
  let nats: NatsServer;
  const procs: Array<{ name: string; proc: TestProcess }> = [];
  let ports: Record<'privacy' | 'general' | 'personal' | 'fusion' | 'updater', number>;
  let client: AiMassClient;
  let privacy: PrivacyClient;
  let training: TrainingAdminClient;

  async function start(name: keyof typeof mains, env: Record<string, string>): Promise<void> {
    const started = await TestProcess.start(process.execPath, {
      args: [mains[name]],
      env: { AIMASS_GRPC__PORT: String(ports[name]), ...env },
      ready: new RegExp(`${name === 'general' ? 'general-model' : name === 'personal' ? 'personal-model' : name} serving`),
      timeoutMs: 60_000,
    });
    procs.push({ name, proc: started.process });
  }

  beforeAll(async () => {
    dir = await tempDir('aimass-e2e-privacy-');
    dataDir = join(dir.path, 'data');
    nats = await NatsServer.start({ storeDir: join(dataDir, 'nats') });
    const events = { AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: nats.url };
    const repository = join(dir.path, 'models');
    await trainGeneral({ repository, model: 'general', version: 1, minAccuracy: 0.98 });
    ports = { privacy: await freePort(), general: await freePort(), personal: await freePort(), fusion: await freePort(), updater: await freePort() };
    const at = (name: keyof typeof ports) => `127.0.0.1:${ports[name]}`;
    const store = (name: string) => ({ AIMASS_STORE__PATH: join(dataDir, `${name}.sqlite`) });

    await start('privacy', {
      ...store('privacy'),
      ...events,
      AIMASS_PSEUDONYM__SECRET: SECRET,
      AIMASS_DATA_KEYS__KEK_SOURCE: 'config',
      AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT: KEK,
      AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS: at('personal'),
      AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS: at('updater'),
      // Rounds of ErasureRequested are retried sooner than in production, so a slow participant
      // shows up as a retry rather than a timeout.
      AIMASS_PRIVACY__ERASURE__RETRY_INTERVAL_MS: '5000',
      AIMASS_PRIVACY__ERASURE__SWEEP_INTERVAL_MS: '1000',
    });
    await start('general', { AIMASS_GENERAL_MODEL__REPOSITORY: repository });
    await start('personal', { ...store('personal-model'), ...events, AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: at('privacy') });
    await start('updater', {
      ...store('updater'),
      ...events,
      AIMASS_PSEUDONYM__SECRET: SECRET,
      AIMASS_UPDATER__GENERAL_MODEL__ADDRESS: at('general'),
      AIMASS_UPDATER__PERSONAL_MODEL__ADDRESS: at('personal'),
      AIMASS_UPDATER__PRIVACY__ADDRESS: at('privacy'),
    });
    await start('fusion', {
      ...store('fusion'),
      ...events,
      AIMASS_PSEUDONYM__SECRET: SECRET,
      AIMASS_FUSION__GENERAL_MODEL__ADDRESS: at('general'),
      AIMASS_FUSION__PERSONAL_MODEL__ADDRESS: at('personal'),
      AIMASS_FUSION__PRIVACY__ADDRESS: at('privacy'),
    });
    client = new AiMassClient({ address: at('fusion'), tenant: TENANT, defaultDeadlineMs: 10_000 });
    privacy = new PrivacyClient({ address: at('privacy'), tenant: TENANT, defaultDeadlineMs: 10_000 });
    training = new TrainingAdminClient({ address: at('updater'), tenant: TENANT, defaultDeadlineMs: 10_000 });
  }, 240_000);

  afterAll(async () => {
    client?.close();
    privacy?.close();
    training?.close();
    for (const { proc } of procs.reverse()) await proc.dispose();
    await nats?.dispose();
    await dir?.remove();
  });

  async function settled(userId: string): Promise<string> {
    let pseudonym = '';
    await waitUntil(
      async () => {
        const state = await training.trainingState(userId);
        pseudonym = state.user?.userPseudonym ?? '';
        return state.pendingEvents === 0 && (state.user?.pendingEvents ?? 0) === 0;
      },
      `the updater to apply ${userId}'s feedback`,
      20_000,
      50,
    );
    return pseudonym;
  }

  /** personal-model's own view of a user's stored model, asked directly (internal API). */
  async function storedVersions(pseudonym: string): Promise<{ code: number; versions: number }> {
    const c = new v1.PersonalModelServiceClient(`127.0.0.1:${ports.personal}`, credentials.createInsecure());
    const md = new Metadata();
    md.set('x-aimass-tenant', TENANT);
    try {
      const listed = await new Promise<v1.ListVersionsResponse>((resolve, reject) =>
        c.listVersions(v1.ListVersionsRequest.fromPartial({ userPseudonym: pseudonym }), md, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!))),
      );
      return { code: status.OK, versions: listed.versions.length };
    } catch (err) {
      return { code: (err as { code: number }).code, versions: 0 };
    } finally {
      c.close();
    }
  }

  const mail = (marker: string, i: number) => ({
    subject: `Weekly digest ${i} ${marker}`,
    body: `Hello, this is issue ${i} of the digest. Reference ${marker}. Unsubscribe any time.`,
    headers: { From: 'Digest <news@digest.example>', 'List-Id': '<weekly.digest.example>' },
  });

  it('without consent: Predict uses the general model and says why; Feedback is refused and nothing is recorded', async () => {
    const user = 'nobody-consented@example.com';
    const p = await client.predict(user, mail('no-consent', 0));
    expect(p.provenance.fallbacks.map((f) => f.reason)).toContain('no_consent');
    expect(p.provenance.models.map((m) => m.role)).not.toContain('personal');
    await expect(client.feedback({ userId: user, input: mail('no-consent', 1), label: 'spam' })).rejects.toBeInstanceOf(FailedPreconditionError);
    const state = await training.trainingState(user);
    expect({ pending: state.user?.pendingEvents ?? 0, version: state.user?.currentVersion ?? 0 }).toEqual({ pending: 0, version: 0 });
    const held = (await privacy.export(user)).document as { feedback: unknown[]; models: unknown[] };
    expect({ feedback: held.feedback, models: held.models }).toEqual({ feedback: [], models: [] });
  });

  it('learns with consent, exports everything, then erases the user everywhere: the receipt lists every service and no copy is readable', { timeout: 180_000 }, async () => {
    const marker = `mk${randomBytes(9).toString('hex')}`;
    const user = `erin.${randomBytes(6).toString('hex')}@example.com`;
    await privacy.grant(user, ['personalization', 'training'], { policyVersion: 'v1', source: 'e2e-signup' });

    // Feedback on predictions and on direct inputs, all carrying the marker.
    for (let i = 0; i < 6; i++) {
      const p = await client.predict(user, mail(marker, i));
      await client.feedback({ userId: user, predictionId: p.predictionId, label: 'spam', idempotencyKey: `${marker}-p${i}` });
      await client.feedback({ userId: user, input: mail(marker, 100 + i), label: 'spam', idempotencyKey: `${marker}-d${i}` });
    }
    const pseudonym = await settled(user);
    expect(pseudonym).not.toBe('');
    const learned = await client.predict(user, mail(marker, 50));
    expect(learned.provenance.models.map((m) => m.role)).toContain('personal');
    expect((await storedVersions(pseudonym)).versions).toBeGreaterThan(0);

    // Export: consents with their history, the feedback (decrypted, with the marker) and the model versions.
    const exported = JSON.stringify((await privacy.export(user)).document);
    expect(exported).toContain(marker);
    expect(exported).toContain('e2e-signup');
    const doc = JSON.parse(exported) as { feedback: unknown[]; feedbackOmitted: number; models: unknown[]; consent: { history: { verified: boolean; records: unknown[] } } };
    expect(doc.feedback.length).toBe(12);
    expect(doc.models.length).toBeGreaterThan(0);
    expect(doc.feedbackOmitted).toBe(0);
    expect(doc.consent.history).toMatchObject({ verified: true });
    expect(doc.consent.history.records.length).toBe(2);

    // Erase while feedback is still arriving: whatever fusion accepted before the tombstone (and
    // the updater has not applied yet) must not bring the model back once the erasure is done.
    const outcomes: string[] = [];
    let racing = true;
    let firstAccepted!: () => void;
    const oneAccepted = new Promise<void>((resolve) => (firstAccepted = resolve));
    const sender = (async () => {
      for (let i = 0; racing; i++) {
        const outcome = await client.feedback({ userId: user, input: mail(marker, 200 + i), label: 'ham', idempotencyKey: `race-${i}` }).then(
          () => 'accepted',
          (err: unknown) => (err instanceof FailedPreconditionError ? 'refused' : `error: ${String(err)}`),
        );
        outcomes.push(outcome);
        if (outcome === 'accepted') firstAccepted();
      }
    })();
    await oneAccepted;
    const erasure = await privacy.erase(user, { reason: 'e2e-gdpr-art17' });
    await new Promise((r) => setTimeout(r, 300));
    racing = false;
    await sender;
    expect(outcomes.filter((o) => o !== 'accepted' && o !== 'refused')).toEqual([]);
    expect(outcomes.filter((o) => o === 'accepted').length).toBeGreaterThan(0);
    // Once the tombstone is written, fusion refuses the user's feedback (the consent records are gone).
    expect(outcomes.at(-1)).toBe('refused');
    const receipt = await privacy.waitForErasure(erasure.erasureId, { timeoutMs: 60_000 });
    expect(receipt.status).toBe('completed');
    expect(receipt.keyDestroyedAt).toBeInstanceOf(Date);
    expect(receipt.confirmations.map((c) => c.service).sort()).toEqual(['fusion', 'personal-model', 'privacy', 'updater']);
    for (const c of receipt.confirmations) expect(c.confirmedAt).toBeInstanceOf(Date);

    // Let anything still in flight (racing feedback, redeliveries) reach the updater, then look.
    await waitUntil(async () => (await training.trainingState()).pendingEvents === 0, 'the feedback stream to drain', 30_000, 100);
    await new Promise((r) => setTimeout(r, 1_500));
    const after = await storedVersions(pseudonym);
    expect(after.versions).toBe(0);
    const next = await client.predict(user, mail(marker, 51));
    expect(next.provenance.models.map((m) => m.role)).not.toContain('personal');
    await expect(client.feedback({ userId: user, input: mail(marker, 300), label: 'spam' })).rejects.toBeInstanceOf(FailedPreconditionError);

    const afterExport = JSON.stringify((await privacy.export(user)).document);
    expect(afterExport).not.toContain(marker);

    // Every file the platform wrote (SQLite databases with their WAL, the JetStream store) and
    // every log line: neither the marker nor the user's id is readable anywhere.
    const skip = (path: string) => path.startsWith(join(dir.path, 'models'));
    expect(await filesContaining(dataDir, marker, skip)).toEqual([]);
    expect(await filesContaining(dataDir, user, skip)).toEqual([]);
    for (const { name, proc } of procs) {
      expect({ name, marker: proc.output.includes(marker), user: proc.output.includes(user) }).toEqual({ name, marker: false, user: false });
    }
    expect(nats.output.includes(marker) || nats.output.includes(user)).toBe(false);
  });

  it('a withdrawal reaches fusion within a second: the next Predicts are general-only, Feedback is refused', { timeout: 60_000 }, async () => {
    const user = `wendy.${randomBytes(6).toString('hex')}@example.com`;
    await privacy.grant(user, ['personalization', 'training'], { policyVersion: 'v1', source: 'e2e' });
    for (let i = 0; i < 3; i++) await client.feedback({ userId: user, input: mail('withdraw', i), label: 'spam' });
    await settled(user);
    expect((await client.predict(user, mail('withdraw', 9))).provenance.models.map((m) => m.role)).toContain('personal');

    await privacy.setConsent({ userId: user, purpose: 'personalization', state: 'withdrawn', policyVersion: 'v1', source: 'e2e' });
    await privacy.setConsent({ userId: user, purpose: 'training', state: 'withdrawn', policyVersion: 'v1', source: 'e2e' });
    const withdrawnAt = Date.now();
    // ConsentChanged reaches the services' caches in milliseconds; the stated bound is 1 s.
    await waitUntil(
      async () => (await client.predict(user, mail('withdraw', 10))).provenance.fallbacks.some((f) => f.reason === 'no_consent'),
      'Predict to stop using the personal model',
      1_000,
      20,
    );
    expect(Date.now() - withdrawnAt).toBeLessThan(1_000);
    await expect(client.feedback({ userId: user, input: mail('withdraw', 11), label: 'spam' })).rejects.toBeInstanceOf(FailedPreconditionError);
  });
});
