import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PayloadUnreadableError } from '@aimass/events';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AesGcmSealer,
  DataKeyRing,
  WRAPPED_KEY_COLLECTION,
  documentWrappedKeyStore,
  tenantKeysFromConfig,
  type WrappedKeyDocument,
  type WrappedKeyStore,
} from '../src/index.js';

const A = { tenant: 'acme', userPseudonym: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' };
const text = (s: string) => new TextEncoder().encode(s);

describe('documentWrappedKeyStore on SQLite', () => {
  let dir: TempDir;
  let stores: DocumentStore[];

  beforeEach(async () => {
    dir = await tempDir('aimass-crypto-sqlite-');
    stores = [];
  });
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await dir.remove();
  });

  /** One more connection to the same file, as another process would have. */
  async function connect(): Promise<{ store: DocumentStore; keys: WrappedKeyStore }> {
    const store = await openSqliteStore({ path: join(dir.path, 'privacy.db') });
    stores.push(store);
    const collection = await store.collection<WrappedKeyDocument>(WRAPPED_KEY_COLLECTION);
    return { store, keys: documentWrappedKeyStore(collection) };
  }

  it('rings on separate connections racing on a first use end with one key', async () => {
    const kek = tenantKeysFromConfig({ default: randomBytes(32).toString('base64') });
    const connections = await Promise.all([connect(), connect(), connect()]);
    const rings = Array.from({ length: 9 }, (_, i) => new DataKeyRing({ kek, store: connections[i % 3]!.keys }));
    const sealers = rings.map((keys) => new AesGcmSealer({ keys }));
    const sealed = await Promise.all(sealers.map((s, i) => s.seal(A, text(`m${i}`), `e${i}`)));
    expect(new Set(sealed.map((p) => p.keyId)).size).toBe(1);
    expect(rings.reduce((n, r) => n + r.stats().creates, 0)).toBe(1);
    for (const [i, p] of sealed.entries()) {
      expect(new TextDecoder().decode(await sealers[(i + 1) % sealers.length]!.open(A, p, `e${i}`))).toBe(`m${i}`);
    }
  });

  it('keeps only the wrapped key on disk, and destroy makes the payloads unreadable', async () => {
    const kek = tenantKeysFromConfig({ default: randomBytes(32).toString('base64') });
    const { keys } = await connect();
    const ring = new DataKeyRing({ kek, store: keys });
    const sealer = new AesGcmSealer({ keys: ring });
    const sealed = await sealer.seal(A, text('marker-7d1f'), 'e1');
    const key = (await ring.currentKey(A)).key.export();

    const onDisk = Buffer.concat(await Promise.all((await readdir(dir.path)).map((f) => readFile(join(dir.path, f)))));
    expect(onDisk.includes(key)).toBe(false);
    const stored = (await keys.get(A.tenant, A.userPseudonym))!;
    expect(onDisk.includes(Buffer.from(stored.key.wrappedKey))).toBe(true);

    // Another replica destroys the key; this one hears of the erasure and forgets.
    const other = await connect();
    expect(await new DataKeyRing({ kek, store: other.keys }).destroy(A.tenant, A.userPseudonym)).toBe(true);
    ring.forget(A.tenant, A.userPseudonym);
    await expect(sealer.open(A, sealed, 'e1')).rejects.toBeInstanceOf(PayloadUnreadableError);
    expect(await keys.get(A.tenant, A.userPseudonym)).toBeUndefined();
  });

  it("erasure's deleteByUser on the collection destroys the key too", async () => {
    const kek = tenantKeysFromConfig({ default: randomBytes(32).toString('base64') });
    const { store, keys } = await connect();
    await new DataKeyRing({ kek, store: keys }).currentKey(A);
    const collection = await store.collection<WrappedKeyDocument>(WRAPPED_KEY_COLLECTION);
    expect(await collection.deleteByUser(A.tenant, A.userPseudonym)).toBe(1);
    expect(await keys.get(A.tenant, A.userPseudonym)).toBeUndefined();
  });

  it('replace compares the revision; destroy with a key id only removes that key', async () => {
    const v1 = randomBytes(32).toString('base64');
    const v2 = randomBytes(32).toString('base64');
    const { keys } = await connect();
    const a = await new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: v1 } }), store: keys }).currentKey(A);
    const before = (await keys.get(A.tenant, A.userPseudonym))!;
    expect(await keys.replace(A.tenant, A.userPseudonym, before.revision + 1, before.key)).toBeUndefined();

    const rotated = new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: { versions: { '1': v1, '2': v2 } } } }), store: keys });
    expect(await rotated.rewrap(A.tenant, A.userPseudonym)).toBe('rewrapped');
    const after = (await keys.get(A.tenant, A.userPseudonym))!;
    expect(after).toMatchObject({ revision: before.revision + 1, key: { keyId: a.keyId, kekVersion: '2' } });
    expect(after.key.createdAt.getTime()).toBe(before.key.createdAt.getTime());

    expect(await keys.destroy(A.tenant, A.userPseudonym, 'someone.else')).toBe(false);
    expect(await keys.destroy(A.tenant, A.userPseudonym, a.keyId)).toBe(true);
    expect(await keys.destroy(A.tenant, A.userPseudonym)).toBe(false);
  });
});
