// The Open Inference Protocol file must stay wire-identical to the KServe v2 / Triton spec, so
// that unmodified Triton and KServe clients can call the general-model service. The expected
// definitions below are transcribed from the specification, independently of proto/.
import { fromBinary, isFieldSet } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { inference, loadDescriptorSet, SERVICE_NAMES } from '@aimass/proto';

const files = fromBinary(FileDescriptorSetSchema, loadDescriptorSet()).file;
const kserve = files.find((f) => f.name === 'inference/grpc_service.proto');

function scalarName(type: FieldDescriptorProto_Type): string {
  return FieldDescriptorProto_Type[type].toLowerCase();
}

function nested(message: DescriptorProto, name: string): DescriptorProto | undefined {
  return message.nestedType.find((n) => n.name === name);
}

function findMessage(file: FileDescriptorProto, path: string): DescriptorProto | undefined {
  const [head, ...rest] = path.split('.');
  let message = file.messageType.find((m) => m.name === head);
  for (const part of rest) message = message && nested(message, part);
  return message;
}

/** Renders a message's fields in .proto syntax, e.g. "repeated bytes raw_input_contents = 7". */
function render(file: FileDescriptorProto, message: DescriptorProto): string[] {
  const prefix = `.${file.package}.`;
  const typeName = (name: string) => (name.startsWith(prefix) ? name.slice(prefix.length) : name.slice(1));
  return message.field.map((field) => {
    let type: string;
    if (field.type === FieldDescriptorProto_Type.MESSAGE || field.type === FieldDescriptorProto_Type.ENUM) {
      const entry = findMessage(file, typeName(field.typeName));
      if (entry?.options?.mapEntry) {
        const [key, value] = render(file, entry).map((f) => f.split(' ')[0]);
        return `map<${key}, ${value}> ${field.name} = ${field.number}`;
      }
      type = typeName(field.typeName);
    } else {
      type = scalarName(field.type);
    }
    const label = field.label === FieldDescriptorProto_Label.REPEATED ? 'repeated ' : '';
    // oneof_index is proto2 optional: its default 0 is only meaningful when set.
    const inOneof = isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex) && !field.proto3Optional;
    const oneof = inOneof ? `oneof ${message.oneofDecl[field.oneofIndex]?.name}: ` : '';
    return `${oneof}${label}${type} ${field.name} = ${field.number}`;
  });
}

const TENSOR = [
  'string name = 1',
  'string datatype = 2',
  'repeated int64 shape = 3',
  'map<string, InferParameter> parameters = 4',
  'InferTensorContents contents = 5',
];

const SPEC: Record<string, string[]> = {
  ServerLiveRequest: [],
  ServerLiveResponse: ['bool live = 1'],
  ServerReadyRequest: [],
  ServerReadyResponse: ['bool ready = 1'],
  ModelReadyRequest: ['string name = 1', 'string version = 2'],
  ModelReadyResponse: ['bool ready = 1'],
  ServerMetadataRequest: [],
  ServerMetadataResponse: ['string name = 1', 'string version = 2', 'repeated string extensions = 3'],
  ModelMetadataRequest: ['string name = 1', 'string version = 2'],
  ModelMetadataResponse: [
    'string name = 1',
    'repeated string versions = 2',
    'string platform = 3',
    'repeated ModelMetadataResponse.TensorMetadata inputs = 4',
    'repeated ModelMetadataResponse.TensorMetadata outputs = 5',
  ],
  'ModelMetadataResponse.TensorMetadata': ['string name = 1', 'string datatype = 2', 'repeated int64 shape = 3'],
  InferParameter: [
    'oneof parameter_choice: bool bool_param = 1',
    'oneof parameter_choice: int64 int64_param = 2',
    'oneof parameter_choice: string string_param = 3',
    'oneof parameter_choice: double double_param = 4',
    'oneof parameter_choice: uint64 uint64_param = 5',
  ],
  InferTensorContents: [
    'repeated bool bool_contents = 1',
    'repeated int32 int_contents = 2',
    'repeated int64 int64_contents = 3',
    'repeated uint32 uint_contents = 4',
    'repeated uint64 uint64_contents = 5',
    'repeated float fp32_contents = 6',
    'repeated double fp64_contents = 7',
    'repeated bytes bytes_contents = 8',
  ],
  ModelInferRequest: [
    'string model_name = 1',
    'string model_version = 2',
    'string id = 3',
    'map<string, InferParameter> parameters = 4',
    'repeated ModelInferRequest.InferInputTensor inputs = 5',
    'repeated ModelInferRequest.InferRequestedOutputTensor outputs = 6',
    'repeated bytes raw_input_contents = 7',
  ],
  'ModelInferRequest.InferInputTensor': TENSOR,
  'ModelInferRequest.InferRequestedOutputTensor': ['string name = 1', 'map<string, InferParameter> parameters = 2'],
  ModelInferResponse: [
    'string model_name = 1',
    'string model_version = 2',
    'string id = 3',
    'map<string, InferParameter> parameters = 4',
    'repeated ModelInferResponse.InferOutputTensor outputs = 5',
    'repeated bytes raw_output_contents = 6',
  ],
  'ModelInferResponse.InferOutputTensor': TENSOR,
  ModelRepositoryParameter: [
    'oneof parameter_choice: bool bool_param = 1',
    'oneof parameter_choice: int64 int64_param = 2',
    'oneof parameter_choice: string string_param = 3',
    'oneof parameter_choice: bytes bytes_param = 4',
  ],
  RepositoryIndexRequest: ['string repository_name = 1', 'bool ready = 2'],
  RepositoryIndexResponse: ['repeated RepositoryIndexResponse.ModelIndex models = 1'],
  'RepositoryIndexResponse.ModelIndex': ['string name = 1', 'string version = 2', 'string state = 3', 'string reason = 4'],
  RepositoryModelLoadRequest: [
    'string repository_name = 1',
    'string model_name = 2',
    'map<string, ModelRepositoryParameter> parameters = 3',
  ],
  RepositoryModelLoadResponse: [],
  RepositoryModelUnloadRequest: [
    'string repository_name = 1',
    'string model_name = 2',
    'map<string, ModelRepositoryParameter> parameters = 3',
  ],
  RepositoryModelUnloadResponse: [],
  // Triton's statistics extension (without the later memory_usage = 8 and response_stats = 9 of
  // ModelStatistics, which this server does not report).
  ModelStatisticsRequest: ['string name = 1', 'string version = 2'],
  ModelStatisticsResponse: ['repeated ModelStatistics model_stats = 1'],
  StatisticDuration: ['uint64 count = 1', 'uint64 ns = 2'],
  ModelStatistics: [
    'string name = 1',
    'string version = 2',
    'uint64 last_inference = 3',
    'uint64 inference_count = 4',
    'uint64 execution_count = 5',
    'InferStatistics inference_stats = 6',
    'repeated InferBatchStatistics batch_stats = 7',
  ],
  InferStatistics: [
    'StatisticDuration success = 1',
    'StatisticDuration fail = 2',
    'StatisticDuration queue = 3',
    'StatisticDuration compute_input = 4',
    'StatisticDuration compute_infer = 5',
    'StatisticDuration compute_output = 6',
    'StatisticDuration cache_hit = 7',
    'StatisticDuration cache_miss = 8',
  ],
  InferBatchStatistics: [
    'uint64 batch_size = 1',
    'StatisticDuration compute_input = 2',
    'StatisticDuration compute_infer = 3',
    'StatisticDuration compute_output = 4',
  ],
};

const METHODS = [
  'ServerLive',
  'ServerReady',
  'ModelReady',
  'ServerMetadata',
  'ModelMetadata',
  'ModelInfer',
  'RepositoryIndex',
  'RepositoryModelLoad',
  'RepositoryModelUnload',
  'ModelStatistics',
];

describe('KServe v2 / Triton contract', () => {
  it('is package "inference" with service GRPCInferenceService', () => {
    expect(kserve?.package).toBe('inference');
    expect(kserve?.service.map((s) => s.name)).toEqual(['GRPCInferenceService']);
    expect(SERVICE_NAMES.inference).toBe('inference.GRPCInferenceService');
  });

  it('has exactly the spec methods, each unary with <Method>Request / <Method>Response', () => {
    const service = kserve?.service[0];
    expect(service?.method.map((m) => m.name).sort()).toEqual([...METHODS].sort());
    for (const method of service?.method ?? []) {
      expect(method.inputType).toBe(`.inference.${method.name}Request`);
      expect(method.outputType).toBe(`.inference.${method.name}Response`);
      expect(method.clientStreaming || method.serverStreaming).toBe(false);
    }
  });

  it('has exactly the spec messages', () => {
    const topLevel = kserve?.messageType.map((m) => m.name).sort();
    expect(topLevel).toEqual(Object.keys(SPEC).filter((k) => !k.includes('.')).sort());
  });

  for (const [name, fields] of Object.entries(SPEC)) {
    it(`${name} has the spec's field names, types and numbers`, () => {
      const message = kserve && findMessage(kserve, name);
      expect(message, name).toBeDefined();
      expect(render(kserve!, message!)).toEqual(fields);
    });
  }

  it('generated grpc-js definition uses the spec method paths', () => {
    const paths = Object.values(inference.GRPCInferenceServiceService).map((m) => m.path);
    expect(paths.sort()).toEqual(METHODS.map((m) => `/inference.GRPCInferenceService/${m}`).sort());
  });

  it('generated code writes the spec tags on the wire', () => {
    const bytes = inference.ModelInferRequest.encode(
      inference.ModelInferRequest.fromPartial({ modelName: 'm', modelVersion: 'v', id: 'i', rawInputContents: [Buffer.from([9])] }),
    ).finish();
    // tag = field_number << 3 | wire type 2 (length-delimited), each followed by length 1 and the byte.
    expect([...bytes]).toEqual([0x0a, 1, 0x6d, 0x12, 1, 0x76, 0x1a, 1, 0x69, 0x3a, 1, 9]);

    const response = inference.ModelInferResponse.encode(
      inference.ModelInferResponse.fromPartial({ rawOutputContents: [Buffer.from([7])] }),
    ).finish();
    expect([...response]).toEqual([(6 << 3) | 2, 1, 7]);

    const contents = inference.InferTensorContents.encode(
      inference.InferTensorContents.fromPartial({ fp32Contents: [1], bytesContents: [Buffer.from([5])] }),
    ).finish();
    // fp32_contents = 6 is packed (wire type 2, 4 bytes of float 1.0); bytes_contents = 8.
    expect([...contents]).toEqual([(6 << 3) | 2, 4, 0x00, 0x00, 0x80, 0x3f, (8 << 3) | 2, 1, 5]);
  });
});
