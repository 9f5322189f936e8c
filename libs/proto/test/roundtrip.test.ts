import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, eventCodec, inference, v1 } from '@aimass/proto';

function fp32Bytes(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}

describe('binary round trip', () => {
  it('ModelInferRequest with raw_input_contents, parameters and requested outputs', () => {
    const request: inference.ModelInferRequest = inference.ModelInferRequest.fromPartial({
      modelName: 'mail-intent',
      modelVersion: '3',
      id: 'req-1',
      parameters: {
        sequence_id: { parameterChoice: { $case: 'int64Param', value: 42 } },
        priority: { parameterChoice: { $case: 'uint64Param', value: 7 } },
        binary_data_output: { parameterChoice: { $case: 'boolParam', value: true } },
      },
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [2, 4] },
        { name: 'text', datatype: 'BYTES', shape: [1], contents: { bytesContents: [Buffer.from('hello')] } },
      ],
      outputs: [{ name: 'probs' }, { name: 'embedding', parameters: { binary_data: { parameterChoice: { $case: 'boolParam', value: true } } } }],
      rawInputContents: [fp32Bytes([1.5, -2, 3.25, 0]), Buffer.from([0, 1, 2, 255])],
    });

    const bytes = inference.ModelInferRequest.encode(request).finish();
    const decoded = inference.ModelInferRequest.decode(bytes);

    expect(decoded).toEqual(request);
    expect(decoded.rawInputContents).toHaveLength(2);
    expect(new Float32Array(new Uint8Array(decoded.rawInputContents[0]!).buffer)).toEqual(new Float32Array([1.5, -2, 3.25, 0]));
    expect(decoded.parameters['sequence_id']?.parameterChoice).toEqual({ $case: 'int64Param', value: 42 });
  });

  it('ModelInferResponse with typed contents and raw_output_contents', () => {
    const response = inference.ModelInferResponse.fromPartial({
      modelName: 'mail-intent',
      modelVersion: '3',
      outputs: [
        { name: 'probs', datatype: 'FP32', shape: [1, 3], contents: { fp32Contents: [0.25, 0.5, 0.25] } },
        { name: 'embedding', datatype: 'FP32', shape: [1, 2] },
      ],
      rawOutputContents: [fp32Bytes([0.5, -0.5])],
    });
    const decoded = inference.ModelInferResponse.decode(inference.ModelInferResponse.encode(response).finish());
    expect(decoded).toEqual(response);
  });

  it('FeedbackRecorded with its envelope, timestamps and encrypted payload', () => {
    const occurredAt = new Date('2025-01-02T03:04:05.678Z');
    const event = v1.FeedbackRecorded.fromPartial({
      envelope: {
        eventId: '01942d3e-0000-7000-8000-000000000001',
        tenant: 'acme',
        userPseudonym: 'a'.repeat(64),
        occurredAt,
        schemaVersion: 1,
        eventType: 'aimass.v1.FeedbackRecorded',
        traceParent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        producer: 'fusion',
      },
      predictionId: 'p-1',
      label: 'spam',
      input: { keyId: 'k-1', algorithm: 'AES-256-GCM', nonce: Buffer.alloc(12, 1), ciphertext: Buffer.from('sealed') },
      idempotencyKey: 'idem-1',
      generalModel: { name: 'mail-intent', version: '3' },
    });

    const decoded = v1.FeedbackRecorded.decode(v1.FeedbackRecorded.encode(event).finish());

    expect(decoded).toEqual(event);
    expect(decoded.envelope?.occurredAt).toBeInstanceOf(Date);
    expect(decoded.envelope?.occurredAt?.toISOString()).toBe('2025-01-02T03:04:05.678Z');
  });

  it('decodes an event from the type named in its envelope', () => {
    const event = v1.PersonalModelUpdated.fromPartial({
      envelope: { eventId: 'e-2', tenant: 'acme', eventType: 'aimass.v1.PersonalModelUpdated', schemaVersion: 1 },
      version: 12,
      previousVersion: 11,
      generalModel: { name: 'mail-intent', version: '3' },
      exampleCount: 340,
      kind: v1.UpdateKind.UPDATE_KIND_TRAIN,
    });
    const bytes = v1.PersonalModelUpdated.encode(event).finish();

    // Every event has its envelope in field 1, so the envelope decodes from any event payload.
    const envelopeOnly = v1.FeedbackRecorded.decode(bytes).envelope;
    const codec = eventCodec(envelopeOnly?.eventType ?? '');

    expect(codec).toBe(EVENT_TYPES['aimass.v1.PersonalModelUpdated']);
    expect(codec?.decode(bytes)).toEqual(event);
    expect(eventCodec('aimass.v1.NoSuchEvent')).toBeUndefined();
    expect(eventCodec('toString')).toBeUndefined();
  });

  it('oneofs are discriminated unions that survive encoding and JSON', () => {
    const request = v1.PredictRequest.fromPartial({
      userId: 'u-1',
      input: { kind: { $case: 'mail', value: { subject: 'Invoice', body: 'Please pay', headers: { from: 'a@b.c' } } } },
      options: { strategy: v1.FusionStrategy.FUSION_STRATEGY_INTERPOLATE, topK: 3 },
    });
    const decoded = v1.PredictRequest.decode(v1.PredictRequest.encode(request).finish());
    expect(decoded).toEqual(request);
    expect(decoded.input?.kind?.$case).toBe('mail');

    const json = v1.PredictRequest.toJSON(request) as Record<string, unknown>;
    expect(json['options']).toEqual({ strategy: 'FUSION_STRATEGY_INTERPOLATE', topK: 3 });
    expect(v1.PredictRequest.fromJSON(json)).toEqual(request);
  });

  it('refuses 64-bit values that do not fit a JS number instead of rounding them', () => {
    // uint64 field 2 (PersonalModelUpdated.version) = 2^53 + 1, hand-encoded as a varint.
    const tooBig = 2n ** 53n + 1n;
    const varint: number[] = [];
    for (let v = tooBig; ; ) {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v === 0n) {
        varint.push(byte);
        break;
      }
      varint.push(byte | 0x80);
    }
    const bytes = Uint8Array.from([0x10, ...varint]);
    expect(() => v1.PersonalModelUpdated.decode(bytes)).toThrow();
  });
});
