import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { AES_256_GCM, DataKeyRing, InMemoryWrappedKeyStore, tenantKeysFromConfig } from '@aimass/crypto';
import { ALL_MODEL_UPDATED, createInProcessBus, decodeEvent, type EventBus } from '@aimass/events';
import { TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { freePort, healthStatus, tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COLLECTIONS, createPersonalModelEmbedded, PERSONAL_MODEL_GRPC_SERVICES } from '../src/index.js';
import { pseudonymOf, quietLogger } from './support/harness.js';
import { example, mailWorld } from './support/world.js';

describe('the embedded (one-process) personal model', () => {
  let dir: TempDir;
  const stores: DocumentStore[] = [];
  const opened: string[] = [];

  beforeEach(async () => {
    dir = await tempDir('pm-embedded');
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await dir.remove();
  });

  const environment = (bus?: EventBus) => ({
    logger: quietLogger().logger,
    host: '127.0.0.1',
    port: 0,
    bus,
    openStore: async (name: string) => {
      opened.push(name);
      const store = await openSqliteStore({ path: join(dir.path, `${name}.sqlite`) });
      stores.push(store);
      return store;
    },
  });

  it('serves on the runner store and reports health', async () => {
    const running = await createPersonalModelEmbedded({ env: { AIMASS_PERSONAL_MODEL__VERSIONS_KEPT: '2' } }).start(environment());
    try {
      expect(running.name).toBe('personal-model');
      expect(running.grpcServices).toEqual(PERSONAL_MODEL_GRPC_SERVICES);
      expect(opened).toEqual(['personal-model']);
      expect(await healthStatus(running.address, 'aimass.v1.PersonalModelService')).toBe('SERVING');
      const client = new v1.PersonalModelServiceClient(running.address, credentials.createInsecure());
      const metadata = new Metadata();
      metadata.set(TENANT_METADATA_KEY, 'acme');
      const world = mailWorld(2);
      const user = pseudonymOf('emb');
      // Three versions with versionsKept=2 from the variable: the first is gone.
      for (let v = 0; v < 3; v++) {
        await new Promise((resolve, reject) =>
          client.train({ userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: '', expectedVersion: v }, metadata, { deadline: Date.now() + 5000 }, (err, res) =>
            err ? reject(err) : resolve(res),
          ),
        );
      }
      const list = await new Promise<v1.ListVersionsResponse>((resolve, reject) =>
        client.listVersions({ userPseudonym: user, page: undefined }, metadata, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!))),
      );
      expect(list.versions.map((v) => v.version)).toEqual([3, 2]);
      client.close();
    } finally {
      await running.stop();
    }
  });

  it("announces its writes on the runner's in-process bus", async () => {
    const bus = createInProcessBus();
    const events: { version: number; user: string }[] = [];
    await bus.subscribe(ALL_MODEL_UPDATED, (e) => {
      const update = decodeEvent('aimass.v1.PersonalModelUpdated', e.data);
      events.push({ version: update.version, user: update.envelope.userPseudonym });
    });
    const running = await createPersonalModelEmbedded({ env: {} }).start(environment(bus));
    try {
      const client = new v1.PersonalModelServiceClient(running.address, credentials.createInsecure());
      const metadata = new Metadata();
      metadata.set(TENANT_METADATA_KEY, 'acme');
      const user = pseudonymOf('emb-events');
      await new Promise((resolve, reject) =>
        client.train({ userPseudonym: user, examples: [example(mailWorld(3).mail(), 'spam')], idempotencyKey: 'k', expectedVersion: 0 }, metadata, { deadline: Date.now() + 5000 }, (err, res) =>
          err ? reject(err) : resolve(res),
        ),
      );
      await waitUntil(() => events.length === 1, 'the PersonalModelUpdated event');
      expect(events).toEqual([{ version: 1, user }]);
      client.close();
    } finally {
      await running.stop();
      await bus.close();
    }
  });

  describe('the privacy service of the one-process mode', () => {
    const train = (address: string, user: string) => {
      const client = new v1.PersonalModelServiceClient(address, credentials.createInsecure());
      const metadata = new Metadata();
      metadata.set(TENANT_METADATA_KEY, 'acme');
      return new Promise<v1.TrainResponse>((resolve, reject) =>
        client.train({ userPseudonym: user, examples: [example(mailWorld(4).mail(), 'spam')], idempotencyKey: '', expectedVersion: 0 }, metadata, { deadline: Date.now() + 10_000 }, (err, res) => {
          client.close();
          if (err) reject(err);
          else resolve(res!);
        }),
      );
    };
    const unreachable = async () => `127.0.0.1:${await freePort()}`;

    it("is the runner's by default (env.addressOf('privacy')): consent is enforced, failing closed while privacy does not answer", async () => {
      const bus = createInProcessBus();
      const asked: string[] = [];
      const dead = await unreachable();
      const running = await createPersonalModelEmbedded({ env: {}, config: { privacy: { lookupTimeoutMs: 300 } } }).start({
        ...environment(bus),
        addressOf: (name: string) => {
          asked.push(name);
          return dead;
        },
      });
      try {
        expect(asked).toEqual(['privacy']);
        const err = (await train(running.address, pseudonymOf('emb-privacy')).catch((e: unknown) => e)) as ServiceError;
        expect(err.code).toBe(status.UNAVAILABLE);
        expect(err.details).toMatch(/training consent could not be verified/);
      } finally {
        await running.stop();
        await bus.close();
      }
    });

    it('`privacy: false` runs without it (nothing enforced, stored in clear), and a configured address wins over the runner\'s', async () => {
      const bus = createInProcessBus();
      const asked: string[] = [];
      const addressOf = (name: string) => {
        asked.push(name);
        throw new Error(`not running: ${name}`);
      };
      const off = await createPersonalModelEmbedded({ env: {}, privacy: false }).start({ ...environment(bus), addressOf });
      try {
        const user = pseudonymOf('emb-off');
        expect((await train(off.address, user)).model!.version).toBe(1);
        const versions = await stores.at(-1)!.collection<{ parameters_encryption?: unknown }>({ name: COLLECTIONS.versions });
        expect((await versions.get('acme', `${user}:1`))!.data.parameters_encryption).toBeUndefined();
      } finally {
        await off.stop();
      }
      const ring = new DataKeyRing({ kek: tenantKeysFromConfig({ default: randomBytes(32).toString('base64') }), store: new InMemoryWrappedKeyStore() });
      const grantAll = async () => (['personalization', 'training'] as const).map((purpose) => ({ purpose, state: 'granted' as const, sequence: 1, isDefault: false }));
      const configured = await createPersonalModelEmbedded({
        env: { AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: await unreachable() },
        deps: { keys: ring, consentLookup: grantAll },
      }).start({ ...environment(bus), addressOf });
      try {
        const user = pseudonymOf('emb-sealed');
        expect((await train(configured.address, user)).model!.version).toBe(1);
        const versions = await stores.at(-1)!.collection<{ parameters_encryption?: { algorithm: string } }>({ name: COLLECTIONS.versions });
        expect((await versions.get('acme', `${user}:1`))!.data.parameters_encryption?.algorithm).toBe(AES_256_GCM);
        expect(asked).toEqual([]);
      } finally {
        await configured.stop();
        await bus.close();
      }
    });
  });
});
