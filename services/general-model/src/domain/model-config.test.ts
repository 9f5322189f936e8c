import { describe, expect, it } from 'vitest';
import {
  ModelConfigError,
  formatVersionPolicy,
  mergeModelConfigs,
  parseModelConfigJson,
  parseModelConfigPbtxt,
  parseVersionPolicy,
  selectVersions,
} from './model-config.js';

describe('model configuration', () => {
  it('reads the batching, version policy and parameters of a Triton config.pbtxt', () => {
    const config = parseModelConfigPbtxt(`
      name: "simple"
      platform: "onnxruntime_onnx"
      max_batch_size: 16
      version_policy: { latest: { num_versions: 2 } }
      dynamic_batching {
        preferred_batch_size: [ 4, 8 ]
        max_queue_delay_microseconds: 500
        default_queue_policy { max_queue_size: 64 }
      }
      parameters { key: "allow_non_finite" value: { string_value: "true" } }
      instance_group [ { count: 1, kind: KIND_CPU } ]
      input [ { name: "x", data_type: TYPE_FP32, dims: [ 4 ] } ]
    `);
    expect(config).toEqual({
      maxBatchSize: 16,
      versionPolicy: { kind: 'latest', numVersions: 2 },
      maxQueueDelayMs: 0.5,
      preferredBatchSizes: [4, 8],
      maxQueueRows: 64,
      allowNonFinite: true,
      defaultModelFilename: undefined,
    });
  });

  it('reads the same fields from config.json, in snake_case or camelCase', () => {
    const snake = parseModelConfigJson(
      JSON.stringify({ max_batch_size: 0, version_policy: { specific: { versions: [3, 1] } }, parameters: { allow_non_finite: { string_value: 'false' } } }),
    );
    expect(snake).toMatchObject({ maxBatchSize: 0, versionPolicy: { kind: 'specific', versions: [1, 3] }, allowNonFinite: false });
    const camel = parseModelConfigJson(JSON.stringify({ maxBatchSize: 4, versionPolicy: { all: {} }, dynamicBatching: { maxQueueDelayMicroseconds: 2000 }, allowNonFinite: true }));
    expect(camel).toMatchObject({ maxBatchSize: 4, versionPolicy: { kind: 'all' }, maxQueueDelayMs: 2, allowNonFinite: true });
  });

  it('names the field and file of an invalid value, and refuses other platforms', () => {
    expect(() => parseModelConfigPbtxt('max_batch_size: -1')).toThrow(/config.pbtxt: maxBatchSize/);
    expect(() => parseModelConfigPbtxt('platform: "tensorflow_savedmodel"')).toThrow(/only onnxruntime_onnx/);
    expect(() => parseModelConfigJson('{ "version_policy": { "latest": { "num_versions": 0 } } }')).toThrow(ModelConfigError);
    expect(() => parseModelConfigJson('{ nope')).toThrow(/config.json/);
  });

  it('merges configurations key by key, later ones winning', () => {
    expect(mergeModelConfigs({ maxBatchSize: 8, maxQueueDelayMs: 1 }, undefined, { maxBatchSize: 2, maxQueueDelayMs: undefined })).toEqual({
      maxBatchSize: 2,
      maxQueueDelayMs: 1,
    });
  });
});

describe('version policies', () => {
  it('parses the compact form used in service configuration', () => {
    expect(parseVersionPolicy('latest')).toEqual({ kind: 'latest', numVersions: 1 });
    expect(parseVersionPolicy('latest:3')).toEqual({ kind: 'latest', numVersions: 3 });
    expect(parseVersionPolicy('ALL')).toEqual({ kind: 'all' });
    expect(parseVersionPolicy('specific:3, 1')).toEqual({ kind: 'specific', versions: [1, 3] });
    expect(() => parseVersionPolicy('latest:0')).toThrow(ModelConfigError);
    expect(() => parseVersionPolicy('newest')).toThrow(/expected latest/);
    expect(formatVersionPolicy({ kind: 'specific', versions: [1, 2] })).toBe('specific:1,2');
  });

  it('selects the latest N, all, or the specific versions present', () => {
    const onDisk = [3, 1, 10, 2];
    expect(selectVersions({ kind: 'latest', numVersions: 1 }, onDisk)).toEqual({ versions: [10], missing: [] });
    expect(selectVersions({ kind: 'latest', numVersions: 2 }, onDisk)).toEqual({ versions: [3, 10], missing: [] });
    expect(selectVersions({ kind: 'latest', numVersions: 9 }, onDisk).versions).toEqual([1, 2, 3, 10]);
    expect(selectVersions({ kind: 'all' }, onDisk).versions).toEqual([1, 2, 3, 10]);
    expect(selectVersions({ kind: 'specific', versions: [2, 4] }, onDisk)).toEqual({ versions: [2], missing: [4] });
    expect(selectVersions({ kind: 'latest', numVersions: 1 }, [])).toEqual({ versions: [], missing: [] });
  });
});
