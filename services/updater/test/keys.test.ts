import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AesGcmSealer, DataKeyRing, InMemoryWrappedKeyStore, tenantKeysFromConfig } from '@aimass/crypto';
import { plaintextSealer } from '@aimass/events';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpdaterStore } from '../src/adapters/updater-store.js';
import type { RunningUpdater } from '../src/service.js';
import { waitForExamples } from './support/checks.js';
import { pseudonymizer, startStack, type Stack } from './support/stack.js';

const T = 'keys';
const psn = (user: string) => pseudonymizer.pseudonymize(T, user);

/**
 * Users' keys given to the updater directly (`deps.keys`: a DataKeyRing with real AES-256-GCM keys
 * wrapped by a tenant KEK), without the privacy service, and `allowPlaintext` on, as while
 * migrating a deployment that ran without keys: payloads that came in plaintext are sealed before
 * they are stored.
 */
describe('updater with users\' keys: sealed history, plaintext migrated, export after a key is destroyed', () => {
  let stack: Stack;
  let ring: DataKeyRing;
  let updater: RunningUpdater;
  let viewStore: DocumentStore;
  let view: UpdaterStore;

  beforeAll(async () => {
    stack = await startStack();
    ring = new DataKeyRing({ kek: tenantKeysFromConfig({ default: randomBytes(32).toString('base64') }), store: new InMemoryWrappedKeyStore() });
    // A small export cap, so one test can go beyond it.
    updater = await stack.startUpdater({ privacy: { allowPlaintext: true }, export: { maxEntries: 3 } }, { keys: ring });
    viewStore = await openSqliteStore({ path: stack.updaterDbPath });
    view = await UpdaterStore.open(viewStore);
  });
  afterAll(async () => {
    await viewStore?.close();
    await stack?.stop();
  });

  const updaterFiles = async (): Promise<Buffer> => {
    const names = (await readdir(stack.dir.path)).filter((n) => n.startsWith('updater.sqlite'));
    return Buffer.concat(await Promise.all(names.map((n) => readFile(join(stack.dir.path, n)))));
  };
  const exportOf = (pseudonym: string) => stack.adminCall(updater.address, 'exportFeedback', T, { userPseudonym: pseudonym });

  it('stores sealed payloads, seals those that came in plaintext, and exports them decrypted; a destroyed key leaves the entries without input', async () => {
    const sealedMarker = `sealed-${crypto.randomUUID()}`;
    const plainMarker = `plain-${crypto.randomUUID()}`;
    const ivy = psn('ivy');
    stack.setSealer(new AesGcmSealer({ keys: ring }));
    const a = await stack.feedback({ tenant: T, user: 'ivy', text: 0, marker: sealedMarker });
    // Published by a fusion that had no keys yet.
    stack.setSealer(plaintextSealer());
    const b = await stack.feedback({ tenant: T, user: 'ivy', text: 1, marker: plainMarker });
    await waitForExamples(stack, T, ivy, 2);
    await updater.whenIdle();

    const stored = await view.exportHistory(T, ivy, 10);
    expect(stored.entries.map((e) => [e.input.algorithm, e.sparseFeatures?.algorithm, e.generalOutput?.algorithm])).toEqual([
      ['AES-256-GCM', 'AES-256-GCM', 'AES-256-GCM'],
      ['AES-256-GCM', 'AES-256-GCM', 'AES-256-GCM'],
    ]);
    const files = await updaterFiles();
    expect(files.includes(Buffer.from(a.eventId))).toBe(true);
    expect(files.includes(Buffer.from(sealedMarker))).toBe(false);
    expect(files.includes(Buffer.from(plainMarker))).toBe(false);

    const exported = await exportOf(ivy);
    expect(exported.feedback.map((f) => [f.eventId, f.input?.kind])).toEqual([
      [a.eventId, { $case: 'text', value: `win free money now ${sealedMarker}` }],
      [b.eventId, { $case: 'text', value: `meeting agenda for the project review ${plainMarker}` }],
    ]);

    // Crypto-shredding: the key gone, the entries are still listed (until the erasure deletes
    // them) but nothing of their content can be read.
    expect(await ring.destroy(T, ivy)).toBe(true);
    const shredded = await exportOf(ivy);
    expect(shredded.feedback.map((f) => f.eventId)).toEqual([a.eventId, b.eventId]);
    expect(shredded.feedback.map((f) => f.input)).toEqual([undefined, undefined]);
    expect(shredded.feedback.map((f) => f.label)).toEqual(['spam', 'ham']);
  });

  it('caps ExportFeedback, counting what it left out', async () => {
    const cap = psn('cap');
    stack.setSealer(new AesGcmSealer({ keys: ring }));
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await stack.feedback({ tenant: T, user: 'cap', text: i }));
    await waitForExamples(stack, T, cap, 5);
    const res = await exportOf(cap);
    // The oldest three, and the count of the rest.
    expect(res.feedback.map((f) => f.eventId)).toEqual(sent.slice(0, 3).map((s) => s.eventId));
    expect(res.feedback.map((f) => f.streamSequence)).toEqual(sent.slice(0, 3).map((s) => s.sequence));
    expect(res.omitted).toBe(2);
  });
});
