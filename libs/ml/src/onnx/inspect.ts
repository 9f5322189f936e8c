import onnxProto from 'onnx-proto';
import { onnxElemTypeOf, type OnnxDim } from './builder.js';

const { onnx } = onnxProto;

export interface OnnxValueInfo {
  name: string;
  /** Element type name ('float32', 'int64'...), or `type:<code>` for one this module does not name. */
  type: string;
  /** Fixed sizes as numbers, symbolic ones as their names; `'?'` where the model leaves a dimension unnamed. */
  dims: OnnxDim[];
}

export interface OnnxModelInfo {
  irVersion: number;
  /** Operator set versions by domain ('' is the default ONNX domain). */
  opsets: Record<string, number>;
  producer: string;
  graphName: string;
  /** Graph inputs that are not initializers: what a caller must feed. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** metadata_props, e.g. the labels a trainer stored. */
  metadata: Record<string, string>;
}

/**
 * Reads an ONNX model's signature and metadata_props. onnxruntime-node does not expose
 * metadata_props, and a model repository needs the labels and tokenizer settings a trainer stored
 * there, so this decodes the protobuf directly (it parses the weights too: for a large model, read it
 * once at load time).
 */
export function inspectOnnxModel(bytes: Uint8Array): OnnxModelInfo {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  const initializerNames = new Set((graph?.initializer ?? []).map((t) => t.name ?? ''));
  const info = (v: onnxProto.onnx.IValueInfoProto): OnnxValueInfo => {
    const tensor = v.type?.tensorType;
    const code = tensor?.elemType ?? 0;
    return {
      name: v.name ?? '',
      type: onnxElemTypeOf(code) ?? `type:${code}`,
      dims: (tensor?.shape?.dim ?? []).map((d): OnnxDim => {
        if (d.dimParam) return d.dimParam;
        if (d.dimValue !== null && d.dimValue !== undefined) return Number(d.dimValue);
        return '?';
      }),
    };
  };
  const opsets: Record<string, number> = {};
  for (const o of model.opsetImport) opsets[o.domain ?? ''] = Number(o.version ?? 0);
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps) metadata[p.key ?? ''] = p.value ?? '';
  return {
    irVersion: Number(model.irVersion),
    opsets,
    producer: model.producerName,
    graphName: graph?.name ?? '',
    inputs: (graph?.input ?? []).filter((v) => !initializerNames.has(v.name ?? '')).map(info),
    outputs: (graph?.output ?? []).map(info),
    metadata,
  };
}
