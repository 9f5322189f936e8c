import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addModel, badWarmupModel, fixedModel, linearModel } from './support/models.js';
import { call, callError, fp32Request, healthStatus, inferenceClient, startService } from './support/harness.js';

const stringParam = (value: string) => ({ parameterChoice: { $case: 'stringParam' as const, value } });

describe('model repository, versions and model control', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  let client: ReturnType<typeof inferenceClient> | undefined;

  beforeEach(async () => {
    dir = await tempDir('gm-repo');
  });
  afterEach(async () => {
    client?.close();
    await service?.stop();
    await dir.remove();
    client = undefined;
    service = undefined;
  });

  async function start(config: Parameters<typeof startService>[1] = {}) {
    service = await startService(dir.path, config);
    client = inferenceClient(service.address);
    return client;
  }

  const versionsOf = async (name: string) => (await call(client!, client!.modelMetadata, { name, version: '' })).versions;

  it('serves the latest version by default, ignoring directories that are not numbers', async () => {
    for (const v of [1, 2, 3]) await addModel(dir.path, 'linear', v, linearModel());
    await mkdir(join(dir.path, 'linear', 'latest'));
    await writeFile(join(dir.path, 'linear', 'latest', 'model.onnx'), linearModel());
    await mkdir(join(dir.path, 'linear', '7')); // a version directory without model.onnx
    const c = await start();
    expect(await versionsOf('linear')).toEqual(['3']);
    const res = await call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1));
    expect(res.modelVersion).toBe('3');
    expect((await callError(call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1, { modelVersion: '1' })))).code).toBe(status.NOT_FOUND);
  });

  it('applies the version policy of config.pbtxt, config.json, and the service default', async () => {
    for (const v of [1, 2, 3]) {
      await addModel(dir.path, 'all', v, linearModel(), { config: 'version_policy: { all: {} }' });
      await addModel(dir.path, 'pick', v, linearModel(), { config: { version_policy: { specific: { versions: [1, 3] } } } });
      await addModel(dir.path, 'plain', v, linearModel());
    }
    await start({ versionPolicy: 'latest:2' });
    expect(await versionsOf('all')).toEqual(['1', '2', '3']);
    expect(await versionsOf('pick')).toEqual(['1', '3']);
    expect(await versionsOf('plain')).toEqual(['2', '3']);
    const c = client!;
    expect((await call(c, c.modelInfer, fp32Request('pick', [1, 1, 1, 1], 1, { modelVersion: '1' }))).modelVersion).toBe('1');
    expect(await call(c, c.modelReady, { name: 'pick', version: '2' })).toEqual({ ready: false });
  });

  it('indexes, loads, reloads with a new version, and unloads over gRPC', async () => {
    await addModel(dir.path, 'linear', 1, linearModel());
    await addModel(dir.path, 'other', 1, linearModel());
    const c = await start({ models: [] });
    expect(await call(c, c.serverReady, {})).toEqual({ ready: true });
    expect((await call(c, c.repositoryIndex, { repositoryName: '', ready: false })).models).toEqual([
      { name: 'linear', version: '', state: 'UNAVAILABLE', reason: 'not loaded' },
      { name: 'other', version: '', state: 'UNAVAILABLE', reason: 'not loaded' },
    ]);
    expect(await call(c, c.modelReady, { name: 'linear', version: '' })).toEqual({ ready: false });
    expect((await callError(call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1)))).code).toBe(status.NOT_FOUND);

    await call(c, c.repositoryModelLoad, { repositoryName: '', modelName: 'linear', parameters: {} });
    expect(await call(c, c.modelReady, { name: 'linear', version: '' })).toEqual({ ready: true });
    expect((await call(c, c.repositoryIndex, { repositoryName: '', ready: true })).models).toEqual([{ name: 'linear', version: '1', state: 'READY', reason: '' }]);

    await addModel(dir.path, 'linear', 2, linearModel());
    await call(c, c.repositoryModelLoad, { repositoryName: '', modelName: 'linear', parameters: {} });
    expect(await versionsOf('linear')).toEqual(['2']);
    expect((await call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1))).modelVersion).toBe('2');

    await call(c, c.repositoryModelUnload, { repositoryName: '', modelName: 'linear', parameters: {} });
    expect(await call(c, c.modelReady, { name: 'linear', version: '' })).toEqual({ ready: false });
    const gone = await callError(call(c, c.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1)));
    expect(gone.code).toBe(status.NOT_FOUND);
    expect(gone.details).toMatch(/not loaded \(unavailable: unloaded\)/);
    expect((await call(c, c.repositoryIndex, { repositoryName: '', ready: false })).models[0]).toEqual({ name: 'linear', version: '', state: 'UNAVAILABLE', reason: 'unloaded' });

    expect((await callError(call(c, c.repositoryModelLoad, { repositoryName: '', modelName: 'nope', parameters: {} }))).code).toBe(status.NOT_FOUND);
    expect((await callError(call(c, c.repositoryModelUnload, { repositoryName: '', modelName: 'nope', parameters: {} }))).code).toBe(status.NOT_FOUND);
    expect((await callError(call(c, c.repositoryIndex, { repositoryName: 'elsewhere', ready: false }))).code).toBe(status.NOT_FOUND);
  });

  it('takes a configuration override on load, as Triton does with the "config" parameter', async () => {
    await addModel(dir.path, 'linear', 1, linearModel());
    const c = await start({ models: [] });
    await call(c, c.repositoryModelLoad, { repositoryName: '', modelName: 'linear', parameters: { config: stringParam('{"max_batch_size": 2}') } });
    const err = await callError(call(c, c.modelInfer, fp32Request('linear', Array(12).fill(1), 3)));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/max batch size 2/);
    const bad = await callError(call(c, c.repositoryModelLoad, { repositoryName: '', modelName: 'linear', parameters: { config: stringParam('{"max_batch_size": -3}') } }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    // The versions already serving keep serving after a failed reload.
    expect((await call(c, c.modelInfer, fp32Request('linear', Array(8).fill(1), 2))).outputs).toHaveLength(2);
  });

  it('warms a version up on load: a model whose warm-up run fails is not ready, and the server is not ready', async () => {
    await addModel(dir.path, 'linear', 1, linearModel());
    await addModel(dir.path, 'broken', 1, badWarmupModel());
    const c = await start();
    expect(await call(c, c.serverReady, {})).toEqual({ ready: false });
    expect(await healthStatus(c, 'inference.GRPCInferenceService')).toBe(2);
    expect(await call(c, c.modelReady, { name: 'broken', version: '' })).toEqual({ ready: false });
    expect(await call(c, c.modelReady, { name: 'linear', version: '' })).toEqual({ ready: true });
    const index = (await call(c, c.repositoryIndex, { repositoryName: '', ready: false })).models;
    expect(index.find((m) => m.name === 'broken')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/warm-up failed/) });
    const load = await callError(call(c, c.repositoryModelLoad, { repositoryName: '', modelName: 'broken', parameters: {} }));
    expect(load.code).toBe(status.FAILED_PRECONDITION);
    expect(load.details).toMatch(/model 'broken' failed to load: warm-up failed/);
    // Taking the broken model out of service makes the server ready again.
    await call(c, c.repositoryModelUnload, { repositoryName: '', modelName: 'broken', parameters: {} });
    expect(await call(c, c.serverReady, {})).toEqual({ ready: true });
    expect(await healthStatus(c, 'inference.GRPCInferenceService')).toBe(1);
    expect(await healthStatus(c, 'aimass.v1.GeneralModelService')).toBe(1);
  });

  it('is not ready when the policy names a version that is not in the repository', async () => {
    await addModel(dir.path, 'pick', 1, linearModel(), { config: 'version_policy: { specific: { versions: [1, 4] } }' });
    const c = await start();
    expect(await call(c, c.modelReady, { name: 'pick', version: '' })).toEqual({ ready: false });
    expect(await call(c, c.serverReady, {})).toEqual({ ready: false });
    const index = (await call(c, c.repositoryIndex, { repositoryName: '', ready: false })).models;
    expect(index[0]?.reason).toMatch(/version policy specific:1,4 names versions not in the repository: 4/);
    await addModel(dir.path, 'pick', 4, linearModel());
    await call(c, c.repositoryModelLoad, { repositoryName: '', modelName: 'pick', parameters: {} });
    expect(await versionsOf('pick')).toEqual(['1', '4']);
    expect(await call(c, c.serverReady, {})).toEqual({ ready: true });
  });

  it('loads the same model without warm-up when warm-up is off (so the failure above came from the warm-up run)', async () => {
    await addModel(dir.path, 'broken', 1, badWarmupModel());
    const c = await start({ warmup: false });
    expect(await call(c, c.modelReady, { name: 'broken', version: '' })).toEqual({ ready: true });
  });

  it('refuses max_batch_size > 0 for a model without a batch dimension, and serves max_batch_size 0 unbatched', async () => {
    await addModel(dir.path, 'fixed', 1, fixedModel(), { config: 'max_batch_size: 8' });
    await addModel(dir.path, 'unbatched', 1, linearModel(), { config: 'max_batch_size: 0' });
    const c = await start();
    const index = (await call(c, c.repositoryIndex, { repositoryName: '', ready: false })).models;
    expect(index.find((m) => m.name === 'fixed')?.reason).toMatch(/max_batch_size 8 needs a dynamic dimension 0 on every input, and input 'x' has \[2,2\]/);
    const res = await call(c, c.modelInfer, fp32Request('unbatched', Array(12).fill(1), 3));
    expect(res.outputs[0]!.shape).toEqual([3, 2]);
  });

  it('reports an invalid config.pbtxt as the reason the model is unavailable', async () => {
    await addModel(dir.path, 'linear', 1, linearModel(), { config: 'max_batch_size: 4\ndynamic_batching {' });
    const c = await start();
    const index = (await call(c, c.repositoryIndex, { repositoryName: '', ready: false })).models;
    expect(index[0]).toMatchObject({ name: 'linear', state: 'UNAVAILABLE', reason: expect.stringMatching(/linear\/config.pbtxt: line 2: missing '}'/) });
  });
});
