import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import type { FusionConfigInput } from '../../src/config.js';
import { startFusion, type FusionDependencies, type RunningFusion } from '../../src/service.js';
import { captureLogs, type LogSink } from './logs.js';

export const TEST_SECRET = 'fusion-test-secret-0123456789abcdef-0123456789';

export interface TestFusion extends RunningFusion {
  readonly store: DocumentStore;
  readonly logs: LogSink;
  /** Stops fusion and closes its store. */
  shutdown(): Promise<void>;
}

/**
 * Fusion on a free port with its own SQLite store (in memory, or the file at `storePath`), calling
 * the given services.
 */
export async function startTestFusion(
  addresses: { general: string; personal: string },
  fusion: FusionConfigInput = {},
  logs: LogSink = captureLogs('fusion'),
  deps: Omit<FusionDependencies, 'store'> = {},
  storePath = ':memory:',
): Promise<TestFusion> {
  const store = await openSqliteStore({ path: storePath });
  const running = await startFusion(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
      pseudonym: { secret: TEST_SECRET },
      fusion: {
        ...fusion,
        generalModel: { address: addresses.general, ...fusion.generalModel },
        personalModel: { address: addresses.personal, ...fusion.personalModel },
      },
    },
    logs.logger,
    { ...deps, store },
  );
  return Object.assign(running, {
    store,
    logs,
    async shutdown() {
      await running.stop();
      await store.close();
    },
  });
}
