import { join } from 'node:path';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGeneralModelEmbedded } from '../src/index.js';
import { addModel, trainToyTextModel } from './support/models.js';
import { call, captureLogs, inferenceClient, taskClient } from './support/harness.js';

describe('the embedded (one-process) general model', () => {
  let dir: TempDir;
  let stop: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    dir = await tempDir('gm-embedded');
  });
  afterEach(async () => {
    await stop?.();
    stop = undefined;
    await dir.remove();
  });

  const environment = (logs: ReturnType<typeof captureLogs>) => ({ dataDir: dir.path, logger: logs.logger, host: '127.0.0.1', port: 0 });

  it('serves <dataDir>/models and says how to add the default model when it is missing', async () => {
    const logs = captureLogs();
    const running = await createGeneralModelEmbedded({ env: {}, config: { poolSize: 1 } }).start(environment(logs));
    stop = () => running.stop();
    expect(running.grpcServices).toEqual(['inference.GRPCInferenceService', 'aimass.v1.GeneralModelService']);
    const warning = logs.lines().find((l) => String(l['msg']).startsWith('no default general model'));
    expect(warning?.['repository']).toBe(join(dir.path, 'models'));
    const client = inferenceClient(running.address);
    expect(await call(client, client.serverReady, {})).toEqual({ ready: true });
    client.close();
  });

  it('lets the runner provide the default model before it starts (the training hook)', async () => {
    const logs = captureLogs();
    const toy = await trainToyTextModel();
    const targets: string[] = [];
    const embedded = createGeneralModelEmbedded({
      env: { AIMASS_GENERAL_MODEL__POOL_SIZE: '1' },
      ensureModel: async ({ repository, modelName }) => {
        targets.push(`${repository}|${modelName}`);
        await addModel(repository, modelName, 1, toy.bytes);
      },
    });
    const running = await embedded.start(environment(logs));
    stop = () => running.stop();
    expect(targets).toEqual([`${join(dir.path, 'models')}|general`]);
    const client = taskClient(running.address);
    const res = await call(client, client.classify, { model: undefined, inputs: [{ kind: { $case: 'text', value: 'free money' } }], includeEmbedding: false, includeLogits: false });
    expect(res.model).toEqual({ name: 'general', version: '1' });
    client.close();
    // A second start finds the model and does not train again.
    await running.stop();
    stop = undefined;
    const again = await embedded.start(environment(logs));
    stop = () => again.stop();
    expect(targets).toHaveLength(1);
  });
});
