import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DataKeyError, TenantKeyError } from '../errors.js';
import { tenantKeysFromConfig } from '../tenant-keys/from-config.js';
import { DataKeyRing } from './ring.js';
import { InMemoryWrappedKeyStore, type WrappedKeyStore } from './store.js';

const kekText = () => randomBytes(32).toString('base64');
const A = { tenant: 'acme', userPseudonym: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' };
const B = { tenant: 'acme', userPseudonym: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' };

function ring(options: { store?: WrappedKeyStore; kek?: ReturnType<typeof tenantKeysFromConfig>; now?: () => number; max?: number; ttl?: number; mayCreate?: (t: string, p: string) => boolean | Promise<boolean> } = {}) {
  const store = options.store ?? new InMemoryWrappedKeyStore();
  const kek = options.kek ?? tenantKeysFromConfig({ default: kekText() });
  return { store, kek, ring: new DataKeyRing({ kek, store, now: options.now, cacheMaxEntries: options.max, cacheTtlMs: options.ttl, mayCreate: options.mayCreate }) };
}

describe('DataKeyRing', () => {
  it('creates one 32-byte key per user on first use, stores it only wrapped, and serves it again from memory', async () => {
    const { ring: r, store } = ring();
    const a = await r.currentKey(A);
    expect(a.key.symmetricKeySize).toBe(32);
    expect((await r.currentKey(A)).keyId).toBe(a.keyId);
    const b = await r.currentKey(B);
    expect(b.keyId).not.toBe(a.keyId);
    expect(b.key.export().equals(a.key.export())).toBe(false);

    const stored = await store.get(A.tenant, A.userPseudonym);
    expect(stored?.key).toMatchObject({ keyId: a.keyId, kekVersion: 'default-1', algorithm: 'AES-256-GCM' });
    expect(stored!.key.nonce.byteLength).toBe(12);
    expect(stored!.key.wrappedKey.byteLength).toBe(48);
    expect(Buffer.from(stored!.key.wrappedKey).includes(a.key.export())).toBe(false);
    expect(r.stats()).toMatchObject({ entries: 2, creates: 2, hits: 1 });
  });

  it('keyFor reads the stored key in another ring sharing the store and kek (a restart, another replica)', async () => {
    const first = ring();
    const a = await first.ring.currentKey(A);
    const second = new DataKeyRing({ kek: first.kek, store: first.store });
    expect((await second.keyFor(A, a.keyId)).key.export().equals(a.key.export())).toBe(true);
    expect(second.stats()).toMatchObject({ loads: 1, creates: 0 });
  });

  it('refuses a key id of another user, and a destroyed or unknown one, with the reason', async () => {
    const { ring: r } = ring();
    const a = await r.currentKey(A);
    await r.currentKey(B);
    await expect(r.keyFor(B, a.keyId)).rejects.toMatchObject({ code: 'other_user' });
    await expect(r.keyFor({ tenant: 'globex', userPseudonym: A.userPseudonym }, a.keyId)).rejects.toMatchObject({ code: 'other_user' });
    await expect(r.keyFor(A, '')).rejects.toMatchObject({ code: 'not_found' });

    expect(await r.destroy(A.tenant, A.userPseudonym)).toBe(true);
    const gone = await r.keyFor(A, a.keyId).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(DataKeyError);
    expect(gone).toMatchObject({ code: 'not_found', message: expect.stringContaining('destroyed') as unknown });
    expect(await r.destroy(A.tenant, A.userPseudonym)).toBe(false);
  });

  it('after destroy creates a new key (new id) only when asked to create again', async () => {
    const { ring: r, store } = ring();
    const a = await r.currentKey(A);
    await r.destroy(A.tenant, A.userPseudonym);
    expect(await store.get(A.tenant, A.userPseudonym)).toBeUndefined();
    const again = await r.currentKey(A);
    expect(again.keyId).not.toBe(a.keyId);
    const old = await r.keyFor(A, a.keyId).catch((e: unknown) => e);
    expect(old).toMatchObject({ code: 'not_found', message: expect.stringContaining(`now has key ${again.keyId}`) as unknown });
  });

  it('a wrapped key moved to another user, tenant or key id does not unwrap', async () => {
    const { ring: r, store, kek } = ring();
    const a = await r.currentKey(A);
    const wrapped = (await store.get(A.tenant, A.userPseudonym))!.key;

    // B's record now holds A's wrapped key: a copy between users.
    await store.createIfAbsent(B.tenant, B.userPseudonym, wrapped);
    const fresh = new DataKeyRing({ kek, store });
    const moved = await fresh.keyFor(B, a.keyId).catch((e: unknown) => e);
    // The id carries A's owner tag, so B's ring refuses it before unwrapping.
    expect(moved).toMatchObject({ code: 'other_user' });
    const unwrapMoved = await fresh.currentKey(B).catch((e: unknown) => e);
    expect(unwrapMoved).toBeInstanceOf(DataKeyError);
    expect(unwrapMoved).toMatchObject({ code: 'unwrap_failed', message: expect.stringContaining('moved from another user') as unknown });

    // Same user, other tenant sharing the default KEK.
    const other = { tenant: 'globex', userPseudonym: A.userPseudonym };
    await store.createIfAbsent(other.tenant, other.userPseudonym, wrapped);
    await expect(fresh.currentKey(other)).rejects.toMatchObject({ code: 'unwrap_failed' });

    // A record whose key id was rewritten.
    const s2 = new InMemoryWrappedKeyStore();
    await s2.createIfAbsent(A.tenant, A.userPseudonym, { ...wrapped, keyId: `${a.keyId.split('.')[0]!}.forged` });
    await expect(new DataKeyRing({ kek, store: s2 }).currentKey(A)).rejects.toMatchObject({ code: 'unwrap_failed' });
  });

  it('two rings racing on a first use of one store end with one key', async () => {
    const store = new InMemoryWrappedKeyStore();
    const kek = tenantKeysFromConfig({ default: kekText() });
    const rings = Array.from({ length: 8 }, () => new DataKeyRing({ kek, store }));
    const keys = await Promise.all(rings.map((r) => r.currentKey(A)));
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
    expect(new Set(keys.map((k) => k.key.export().toString('hex'))).size).toBe(1);
    expect(rings.reduce((n, r) => n + r.stats().creates, 0)).toBe(1);
    expect(store.size).toBe(1);
  });

  it('one ring creates once for concurrent first uses', async () => {
    const { ring: r } = ring();
    const keys = await Promise.all([r.currentKey(A), r.currentKey(A), r.currentKey(A)]);
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
    expect(r.stats()).toMatchObject({ creates: 1, loads: 1 });
  });

  it('KEK rotation: new keys are wrapped with v2, keys wrapped with v1 still unwrap, rewrap moves them to v2', async () => {
    const v1 = kekText();
    const v2 = kekText();
    const store = new InMemoryWrappedKeyStore();
    const before = new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: v1 } }), store });
    const a = await before.currentKey(A);
    expect((await store.get(A.tenant, A.userPseudonym))!.key.kekVersion).toBe('1');

    const rotated = tenantKeysFromConfig({ tenants: { acme: { versions: { '1': v1, '2': v2 } } } });
    const after = new DataKeyRing({ kek: rotated, store });
    expect((await after.keyFor(A, a.keyId)).key.export().equals(a.key.export())).toBe(true);
    await after.currentKey(B);
    expect((await store.get(B.tenant, B.userPseudonym))!.key.kekVersion).toBe('2');

    // Without v1 the old key cannot be unwrapped: a configuration fault, said as such.
    const missing = await new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: { versions: { '2': v2 } } } }), store }).keyFor(A, a.keyId).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TenantKeyError);
    expect(missing).toMatchObject({ code: 'unknown_version', message: expect.stringContaining('no version 1 (known: 2)') as unknown });

    expect(await after.rewrap(A.tenant, A.userPseudonym)).toBe('rewrapped');
    expect(await after.rewrap(A.tenant, A.userPseudonym)).toBe('current');
    expect(await after.rewrap('acme', 'nobody')).toBe('absent');
    const record = (await store.get(A.tenant, A.userPseudonym))!;
    expect(record.key).toMatchObject({ keyId: a.keyId, kekVersion: '2' });
    expect(record.revision).toBe(2);
    // v1 can now be retired.
    const retired = new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: { versions: { '2': v2 } } } }), store });
    expect((await retired.keyFor(A, a.keyId)).key.export().equals(a.key.export())).toBe(true);
  });

  it('a held-back current version keeps wrapping with the old one', async () => {
    const kek = tenantKeysFromConfig({ tenants: { acme: { versions: { '1': kekText(), '2': kekText() }, current: 1 } } });
    const { ring: r, store } = ring({ kek });
    await r.currentKey(A);
    expect((await store.get(A.tenant, A.userPseudonym))!.key.kekVersion).toBe('1');
  });

  it('keys wrapped by the default KEK stay readable after the tenant gets its own', async () => {
    const fallback = kekText();
    const store = new InMemoryWrappedKeyStore();
    const a = await new DataKeyRing({ kek: tenantKeysFromConfig({ default: fallback }), store }).currentKey(A);
    const own = new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: kekText() }, default: fallback }), store });
    expect((await own.keyFor(A, a.keyId)).keyId).toBe(a.keyId);
    await own.currentKey(B);
    expect((await store.get(B.tenant, B.userPseudonym))!.key.kekVersion).toBe('1');
  });

  it('holds at most cacheMaxEntries keys, least recently used out first', async () => {
    const { ring: r } = ring({ max: 2 });
    const C = { tenant: 'acme', userPseudonym: 'c'.repeat(32) };
    await r.currentKey(A);
    await r.currentKey(B);
    await r.currentKey(A); // A is now the most recent
    await r.currentKey(C); // evicts B
    expect(r.stats().entries).toBe(2);
    const loads = r.stats().loads;
    await r.currentKey(A);
    expect(r.stats().loads).toBe(loads);
    await r.currentKey(B);
    expect(r.stats().loads).toBe(loads + 1);
  });

  it('reads the store again once cacheTtlMs has passed, so a key destroyed elsewhere stops being used', async () => {
    let now = 1_000;
    const { ring: r, store, kek } = ring({ now: () => now, ttl: 10_000 });
    const a = await r.currentKey(A);
    // The privacy service (another process) destroys the key.
    await new DataKeyRing({ kek, store }).destroy(A.tenant, A.userPseudonym);
    now += 9_999;
    expect((await r.keyFor(A, a.keyId)).keyId).toBe(a.keyId);
    now += 1;
    await expect(r.keyFor(A, a.keyId)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('forget drops the key at once (erasure heard of)', async () => {
    const { ring: r, store, kek } = ring();
    const a = await r.currentKey(A);
    await r.currentKey(B);
    await new DataKeyRing({ kek, store }).destroy(A.tenant, A.userPseudonym);
    expect((await r.keyFor(A, a.keyId)).keyId).toBe(a.keyId); // still in memory
    r.forget(A.tenant, A.userPseudonym);
    expect(r.stats().entries).toBe(1);
    await expect(r.keyFor(A, a.keyId)).rejects.toMatchObject({ code: 'not_found' });
    r.forgetAll();
    expect(r.stats().entries).toBe(0);
  });

  it('a forget during a read keeps the read result out of memory', async () => {
    const inner = new InMemoryWrappedKeyStore();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: WrappedKeyStore = {
      get: async (t, p) => {
        const found = await inner.get(t, p);
        await gate;
        return found;
      },
      createIfAbsent: (t, p, k) => inner.createIfAbsent(t, p, k),
      replace: (t, p, r, k) => inner.replace(t, p, r, k),
      destroy: (t, p, id) => inner.destroy(t, p, id),
    };
    const kek = tenantKeysFromConfig({ default: kekText() });
    const a = await new DataKeyRing({ kek, store: inner }).currentKey(A);
    const r = new DataKeyRing({ kek, store: slow });
    const reading = r.keyFor(A, a.keyId);
    r.forget(A.tenant, A.userPseudonym);
    release();
    expect((await reading).keyId).toBe(a.keyId);
    expect(r.stats().entries).toBe(0);
  });

  it('mayCreate refuses a new key, and a tombstone written during creation destroys the new key', async () => {
    const erased = new Set<string>();
    const { ring: r, store } = ring({ mayCreate: (_t, p) => !erased.has(p) });
    erased.add(A.userPseudonym);
    await expect(r.currentKey(A)).rejects.toMatchObject({ code: 'creation_refused' });
    expect(await store.get(A.tenant, A.userPseudonym)).toBeUndefined();

    // The tombstone appears between the first check and the store write.
    let calls = 0;
    const racing = ring({
      mayCreate: (_t, p) => {
        calls++;
        if (calls === 1) return true;
        return p !== B.userPseudonym;
      },
    });
    await expect(racing.ring.currentKey(B)).rejects.toMatchObject({ code: 'creation_refused' });
    expect(await racing.store.get(B.tenant, B.userPseudonym)).toBeUndefined();
    expect(racing.ring.stats().entries).toBe(0);
  });

  it('refuses an empty tenant or pseudonym', async () => {
    const { ring: r } = ring();
    await expect(r.currentKey({ tenant: '', userPseudonym: 'x' })).rejects.toMatchObject({ code: 'invalid_scope' });
    await expect(r.keyFor({ tenant: 'acme', userPseudonym: '' }, 'k')).rejects.toMatchObject({ code: 'invalid_scope' });
    expect(() => new DataKeyRing({ kek: tenantKeysFromConfig({ default: kekText() }), store: new InMemoryWrappedKeyStore(), cacheMaxEntries: 0 })).toThrow(RangeError);
  });
});
