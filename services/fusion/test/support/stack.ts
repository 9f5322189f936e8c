import type { EventBus } from '@aimass/events';
import type { RunningGeneralModel } from '@aimass/general-model';
import { tempDir, type TempDir } from '@aimass/testing';
import type { FusionConfigInput } from '../../src/config.js';
import type { FusionDependencies } from '../../src/service.js';
import { startTestFusion, type TestFusion } from './fusion.js';
import { addToyGeneralModel, startGeneral } from './general.js';
import { inferenceClient, type InferenceClient } from './grpc.js';
import { captureLogs, type LogSink } from './logs.js';
import { startPersonal, type TestPersonal } from './personal.js';

/** Real general-model, personal-model and fusion services, wired together on free ports. */
export interface Stack {
  readonly dir: TempDir;
  readonly general: RunningGeneralModel;
  readonly personal: TestPersonal;
  readonly fusion: TestFusion;
  readonly client: InferenceClient;
  readonly downstreamLogs: LogSink;
  /** Another fusion instance on the same downstream services (closed with the stack); its store in memory or at `storePath`. */
  addFusion(
    config?: FusionConfigInput,
    addresses?: Partial<{ general: string; personal: string }>,
    deps?: Omit<FusionDependencies, 'store'>,
    storePath?: string,
  ): Promise<{ fusion: TestFusion; client: InferenceClient }>;
  stop(): Promise<void>;
}

/** `personalBus`: personal-model announces its writes there (the first fusion gets no bus). */
export async function startStack(fusionConfig: FusionConfigInput = {}, options: { personalBus?: EventBus } = {}): Promise<Stack> {
  const dir = await tempDir('fusion-it');
  const downstreamLogs = captureLogs('downstream');
  await addToyGeneralModel(dir.path);
  const [general, personal] = await Promise.all([startGeneral(dir.path, downstreamLogs.logger), startPersonal(downstreamLogs.logger, options.personalBus)]);
  const extra: { fusion: TestFusion; client: InferenceClient }[] = [];
  const addFusion = async (
    config: FusionConfigInput = {},
    addresses: Partial<{ general: string; personal: string }> = {},
    deps: Omit<FusionDependencies, 'store'> = {},
    storePath?: string,
  ) => {
    const fusion = await startTestFusion({ general: general.address, personal: personal.address, ...addresses }, config, undefined, deps, storePath);
    const entry = { fusion, client: inferenceClient(fusion.address) };
    extra.push(entry);
    return entry;
  };
  const fusion = await startTestFusion({ general: general.address, personal: personal.address }, fusionConfig);
  const client = inferenceClient(fusion.address);
  return {
    dir,
    general,
    personal,
    fusion,
    client,
    downstreamLogs,
    addFusion,
    async stop() {
      for (const e of [{ fusion, client }, ...extra]) {
        e.client.close();
        await e.fusion.shutdown();
      }
      await personal.stop();
      await general.stop();
      await dir.remove();
    },
  };
}
