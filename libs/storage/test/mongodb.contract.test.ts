import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { openMongoStore } from '@aimass/storage';
import { describeDocumentStoreContract } from './contract.js';

// Needs a real server; a replica set because writeAtomic uses transactions. For example:
//   mongod --replSet rs0 --dbpath /tmp/rs0 & mongosh --eval 'rs.initiate()'
//   AIMASS_TEST_MONGODB_URL='mongodb://localhost:27017/?replicaSet=rs0' npx vitest run
const url = process.env['AIMASS_TEST_MONGODB_URL'];
const database = `aimass_test_${randomBytes(6).toString('hex')}`;
const open = () => openMongoStore({ url: url ?? '', database, maxDocumentBytes: 1024 * 1024, clientOptions: { serverSelectionTimeoutMS: 5000 } });

const title =
  url === undefined || url === ''
    ? 'MongoDB adapter — SKIPPED: set AIMASS_TEST_MONGODB_URL (e.g. mongodb://localhost:27017/?replicaSet=rs0) to run this suite against a real server'
    : `MongoDB adapter (database ${database}, dropped afterwards)`;

if (url === undefined || url === '') {
  // The default reporter shows only a count for a skipped file; say why, and how to run it.
  process.stderr.write(`\n[@aimass/storage] ${title}\n\n`);
}

describe.skipIf(url === undefined || url === '')(title, () => {
  afterAll(async () => {
    const client = new MongoClient(url!);
    try {
      await client.connect();
      await client.db(database).dropDatabase();
    } finally {
      await client.close();
    }
  });

  describeDocumentStoreContract('mongodb', open);

  it('creates the indexes at collection() and stores tenant/id keys, BSON binaries and dates', async () => {
    const store = await open();
    try {
      const col = await store.collection<{ w: Uint8Array; at: Date; hash: string }>({
        name: 'layout',
        indexes: [{ fields: ['user', 'at'] }, { fields: ['hash'], unique: true }],
      });
      await col.put('acme', 'x', { w: new Uint8Array([1, 2, 3]), at: new Date(0), hash: 'h' }, { user: 'u' });
      const client = new MongoClient(url!);
      try {
        await client.connect();
        const raw = client.db(database).collection('layout');
        const names = (await raw.indexes()).map((ix) => ix.name).sort();
        expect(names).toEqual(['_id_', 'ix:id', 'ix:user', 'ix:user,at', 'ux:hash'].sort());
        const doc = await raw.findOne({ _id: 'acme/x' as never });
        expect(doc).toMatchObject({ tenant: 'acme', id: 'x', user: 'u', version: 1 });
        expect(doc?.['data']?.at).toEqual(new Date(0));
        expect(doc?.['data']?.w?._bsontype).toBe('Binary');
      } finally {
        await client.close();
      }
    } finally {
      await store.close();
    }
  });
});
