import type { EventBus } from '@aimass/events';
import type { Logger } from '@aimass/platform';
import { startPersonalModel } from '@aimass/personal-model';
import { openSqliteStore } from '@aimass/storage';

export interface TestPersonal {
  readonly address: string;
  stop(): Promise<void>;
}

/**
 * The real personal-model service on a free port, with its own in-memory SQLite store; with a
 * bus, it announces every write as PersonalModelUpdated.
 */
export async function startPersonal(logger: Logger, bus?: EventBus): Promise<TestPersonal> {
  const store = await openSqliteStore({ path: ':memory:' });
  const running = await startPersonalModel({ grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, personalModel: {} }, logger, { store, bus });
  return {
    address: running.address,
    async stop() {
      await running.stop();
      await store.close();
    },
  };
}
