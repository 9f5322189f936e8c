import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { startPrivacy, type RunningPrivacy } from '@aimass/privacy';
import { TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { freePort } from '@aimass/testing';
import { SECRET, type Stack } from './stack.js';

/** The privacy service's tenant key-encryption key for one test file: a random default key. */
export function testDataKeys() {
  return { kekSource: 'config' as const, kekSecret: { default: randomBytes(32).toString('base64') } };
}

export interface TestPrivacy {
  readonly address: string;
  readonly running: RunningPrivacy;
  setConsent(tenant: string, userId: string, state: 'granted' | 'withdrawn' | 'denied'): Promise<v1.SetConsentResponse>;
  erase(tenant: string, userId: string): Promise<v1.EraseResponse>;
  /** Stops the server (the store stays), e.g. to take privacy away from the updater. */
  stop(): Promise<void>;
  /** Starts it again on the same port, store and keys. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const STATES = {
  granted: v1.ConsentState.CONSENT_STATE_GRANTED,
  withdrawn: v1.ConsentState.CONSENT_STATE_WITHDRAWN,
  denied: v1.ConsentState.CONSENT_STATE_DENIED,
} as const;

/**
 * The real privacy service in this process, on the stack's nats-server and a SQLite file: consent
 * (ConsentChanged feeds the updater's cache), users' data keys (DataKeyService), erasure. It keeps
 * its port across a restart, so a client that lost it finds it again.
 */
export async function startTestPrivacy(stack: Stack): Promise<TestPrivacy> {
  const store: DocumentStore = await openSqliteStore({ path: join(stack.dir.path, 'privacy.sqlite') });
  const bus = await stack.newBus('privacy');
  const port = await freePort();
  const dataKeys = testDataKeys();
  const start = () =>
    startPrivacy(
      {
        grpc: { host: '127.0.0.1', port, drainTimeoutMs: 2_000 },
        pseudonym: { secret: SECRET },
        dataKeys,
        privacy: { erasure: { sweepIntervalMs: 0, graceMs: 0, consumer: { backoffMs: [50], ackWaitMs: 10_000, leaseTtlMs: 2_000 } } },
      },
      stack.logs.logger,
      { store, bus },
    );
  let running: RunningPrivacy | undefined = await start();
  const address = running.address;
  const client = new v1.PrivacyServiceClient(address, credentials.createInsecure());

  function call<Req, Res>(method: 'setConsent' | 'erase', tenant: string, request: Req): Promise<Res> {
    const md = new Metadata();
    md.set(TENANT_METADATA_KEY, tenant);
    return new Promise((resolve, reject) => {
      (client[method] as unknown as (r: Req, m: Metadata, o: object, cb: (err: ServiceError | null, res: Res) => void) => void).call(client, request, md, { deadline: Date.now() + 10_000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  return {
    address,
    get running() {
      if (!running) throw new Error('the test privacy service is stopped');
      return running;
    },
    setConsent: (tenant, userId, state) =>
      call('setConsent', tenant, { userId, purpose: v1.Purpose.PURPOSE_TRAINING, state: STATES[state], policyVersion: 'v1', source: 'test', decidedAt: undefined, idempotencyKey: '' }),
    erase: (tenant, userId) => call('erase', tenant, { userId, reason: 'gdpr-art17', idempotencyKey: '' }),
    async stop() {
      await running?.stop();
      running = undefined;
    },
    async restart() {
      running ??= await start();
    },
    async close() {
      client.close();
      await running?.stop();
      running = undefined;
      await store.close();
    },
  };
}
