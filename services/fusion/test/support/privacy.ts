import { randomBytes } from 'node:crypto';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import type { DataKeyRing } from '@aimass/crypto';
import { consentStateToProto, purposeToProto, type ConsentPurpose, type ConsentStateName } from '@aimass/consent';
import type { EventBus } from '@aimass/events';
import { TENANT_METADATA_KEY, type Logger } from '@aimass/platform';
import { startPrivacy } from '@aimass/privacy';
import { v1 } from '@aimass/proto';
import { openSqliteStore } from '@aimass/storage';
import { TEST_SECRET } from './fusion.js';

export interface TestPrivacy {
  readonly address: string;
  /** The users' data keys privacy holds (its DataKeyRing): `destroy` shreds a user's data. */
  readonly keys: DataKeyRing;
  /** SetConsent as the enterprise's backend calls it (by user id); resolves once it answered. */
  setConsent(userId: string, purpose: ConsentPurpose, state: ConsentStateName, tenant?: string): Promise<v1.SetConsentResponse>;
  /** Erase as the enterprise's backend calls it: tombstone, key destroyed, ErasureRequested published. */
  erase(userId: string, tenant?: string): Promise<v1.EraseResponse>;
  stop(): Promise<void>;
}

/**
 * The real privacy service on a free port, with its own in-memory SQLite store, publishing
 * ConsentChanged on `bus` and serving users' data keys (DataKeyService) wrapped by a random tenant
 * key. It pseudonymizes with fusion's test secret, as a deployment shares it.
 */
export async function startTestPrivacy(bus: EventBus, logger: Logger): Promise<TestPrivacy> {
  const store = await openSqliteStore({ path: ':memory:' });
  const running = await startPrivacy(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
      pseudonym: { secret: TEST_SECRET },
      // A random tenant key-encryption key, as a deployment mounts one.
      dataKeys: { kekSource: 'config', kekSecret: { default: randomBytes(32).toString('base64') } },
      privacy: { outbox: { sweepIntervalMs: 0 } },
    },
    logger,
    { store, bus },
  );
  const client = new v1.PrivacyServiceClient(running.address, credentials.createInsecure());
  return {
    address: running.address,
    keys: running.keys,
    setConsent(userId, purpose, state, tenant = 'acme') {
      const md = new Metadata();
      md.set(TENANT_METADATA_KEY, tenant);
      const request: v1.SetConsentRequest = {
        userId,
        purpose: purposeToProto(purpose),
        state: consentStateToProto(state),
        policyVersion: 'privacy-2026-01',
        source: 'web-settings',
        decidedAt: undefined,
        idempotencyKey: '',
      };
      return new Promise((resolve, reject) => {
        client.setConsent(request, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res: v1.SetConsentResponse) => (err ? reject(err) : resolve(res)));
      });
    },
    erase(userId, tenant = 'acme') {
      const md = new Metadata();
      md.set(TENANT_METADATA_KEY, tenant);
      const request: v1.EraseRequest = { userId, reason: 'test', idempotencyKey: '' };
      return new Promise((resolve, reject) => {
        client.erase(request, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res: v1.EraseResponse) => (err ? reject(err) : resolve(res)));
      });
    },
    async stop() {
      client.close();
      await running.stop();
      await store.close();
    },
  };
}
