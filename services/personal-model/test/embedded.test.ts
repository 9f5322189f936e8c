import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { ALL_MODEL_UPDATED, createInProcessBus, decodeEvent, type EventBus } from '@aimass/events';
import { TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { healthStatus, tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPersonalModelEmbedded, PERSONAL_MODEL_GRPC_SERVICES } from '../src/index.js';
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
});
