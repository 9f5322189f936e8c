import { NatsServer } from '@aimass/testing';
import { connectNatsBus, type NatsEventBus } from '../src/index.js';
import { describeEventBusContract } from './contract.js';

describeEventBusContract('NATS JetStream', async () => {
  const server = await NatsServer.start();
  return {
    connect: () =>
      connectNatsBus({
        servers: server.url,
        name: 'contract',
        reconnectTimeWaitMs: 250,
        publishTimeoutMs: 500,
        publishRetries: 1,
        pullExpiresMs: 1000,
      }),
    // Dropping the connection without close(): the leases are not released, they expire.
    kill: async (bus) => {
      await (bus as NatsEventBus).connection.close();
    },
    consumeDefaults: { leaseTtlMs: 2000 },
    dispose: () => server.dispose(),
  };
});
