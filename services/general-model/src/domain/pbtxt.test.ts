import { describe, expect, it } from 'vitest';
import { PbtxtError, parsePbtxt } from './pbtxt.js';

describe('parsePbtxt', () => {
  it("reads a Triton config.pbtxt with nested messages, lists, enums and comments", () => {
    const text = `
      name: "densenet_onnx"   # the model
      platform: "onnxruntime_onnx"
      max_batch_size : 8
      version_policy: { specific { versions: [1, 3] } }
      input [
        { name: "data_0" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] },
        { name: "mask" data_type: TYPE_BOOL dims: [ -1 ] }
      ]
      dynamic_batching {
        preferred_batch_size: [ 4, 8 ]
        max_queue_delay_microseconds: 100
      }
      parameters { key: "allow_non_finite" value: { string_value: 'tr' "ue" } }
      instance_group [ { count: 2 kind: KIND_CPU } ]
    `;
    const config = parsePbtxt(text);
    expect(config['name']).toEqual(['densenet_onnx']);
    expect(config['max_batch_size']).toEqual([8]);
    expect(config['version_policy']).toEqual([{ specific: [{ versions: [1, 3] }] }]);
    expect(config['input']).toHaveLength(2);
    expect(config['input']?.[1]).toEqual({ name: ['mask'], data_type: ['TYPE_BOOL'], dims: [-1] });
    expect(config['dynamic_batching']).toEqual([{ preferred_batch_size: [4, 8], max_queue_delay_microseconds: [100] }]);
    expect(config['parameters']).toEqual([{ key: ['allow_non_finite'], value: [{ string_value: ['true'] }] }]);
    expect(config['instance_group']).toEqual([{ count: [2], kind: ['KIND_CPU'] }]);
  });

  it('repeats a field written twice, and reads booleans, floats and escapes', () => {
    const config = parsePbtxt('a: 1 a: 2.5e1 b: true c: "x\\"y" d: -inf e { }');
    expect(config).toEqual({ a: [1, 25], b: [true], c: ['x"y'], d: [-Infinity], e: [{}] });
  });

  it('reports the line of a syntax error', () => {
    expect(() => parsePbtxt('max_batch_size: 8\ndynamic_batching {\n  max_queue_delay_microseconds 100\n}')).toThrow(PbtxtError);
    expect(() => parsePbtxt('a {\n b: 1\n')).toThrow(/line 2: missing '}'/);
    expect(() => parsePbtxt('name: "open')).toThrow(/unterminated string/);
  });
});
