import {
  OnnxGraphBuilder,
  exportFastTextOnnx,
  trainTextModel,
  writeModelVersion,
  type LabeledText,
  type ModelVersionExtras,
  type TextModelResult,
} from '@aimass/ml';

/**
 * `linear`: x FP32 [batch, 4] → y FP32 [batch, 2] = x·W with
 * y0 = x0 + x2 + 2·x3 and y1 = x1 + x2 − x3; doubled FP32 [batch, 4] = x + x.
 */
export function linearModel(): Uint8Array {
  const w = new Float32Array([1, 0, 0, 1, 1, 1, 2, -1]);
  return new OnnxGraphBuilder('linear')
    .input('x', 'float32', ['batch', 4])
    .output('y', 'float32', ['batch', 2])
    .output('doubled', 'float32', ['batch', 4])
    .initializer('W', w, [4, 2])
    .node('MatMul', ['x', 'W'], ['y'])
    .node('Add', ['x', 'x'], ['doubled'])
    .metadata({ labels: JSON.stringify(['a', 'b']) })
    .toBytes();
}

export function linearExpected(x: readonly number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r + 4 <= x.length; r += 4) {
    const [a, b, c, d] = x.slice(r, r + 4) as [number, number, number, number];
    out.push(a + c + 2 * d, b + c - d);
  }
  return out;
}

/** `counter`: ids INT64 [batch, 3] → total FP32 [batch] = the row sums. */
export function counterModel(): Uint8Array {
  return new OnnxGraphBuilder('counter')
    .input('ids', 'int64', ['batch', 3])
    .output('total', 'float32', ['batch'])
    .initializer('axis', new BigInt64Array([1n]), [1])
    .node('Cast', ['ids'], ['f'], { to: 1 })
    .node('ReduceSum', ['f', 'axis'], ['total'], { keepdims: 0 })
    .toBytes();
}

/** `fixed`: x FP32 [2, 2] (no batch dimension) → y = x + 1. */
export function fixedModel(): Uint8Array {
  return new OnnxGraphBuilder('fixed')
    .input('x', 'float32', [2, 2])
    .output('y', 'float32', [2, 2])
    .initializer('one', new Float32Array([1]), [])
    .node('Add', ['x', 'one'], ['y'])
    .toBytes();
}

/** Loads, but its warm-up run fails: 3 elements per row cannot be reshaped to [2, -1] with one row. */
export function badWarmupModel(): Uint8Array {
  return new OnnxGraphBuilder('bad_warmup')
    .input('x', 'float32', ['batch', 3])
    .output('y', 'float32', ['a', 'b'])
    .initializer('shape', new BigInt64Array([2n, -1n]), [2])
    .node('Reshape', ['x', 'shape'], ['y'])
    .toBytes();
}

export async function addModel(
  repository: string,
  name: string,
  version: number,
  bytes: Uint8Array,
  extra?: ModelVersionExtras,
): Promise<string> {
  return writeModelVersion(repository, name, version, bytes, extra);
}

const SPAM = ['win free money now', 'cheap pills free offer', 'click here to claim your prize', 'free money click now', 'claim your free prize offer'];
const HAM = ['meeting agenda for the project review', 'notes from the team meeting', 'project review moved to tomorrow', 'agenda and notes for review', 'the team will review the project'];

/** A tiny text model trained by libs/ml on a toy corpus: the same contract as the default general model. */
export async function trainToyTextModel(): Promise<{ bytes: Uint8Array; result: TextModelResult }> {
  const items: LabeledText[] = [];
  for (let i = 0; i < 40; i++) {
    items.push({ key: `s${i}`, text: `${SPAM[i % SPAM.length]} ${i}`, label: 'spam' });
    items.push({ key: `h${i}`, text: `${HAM[i % HAM.length]} ${i}`, label: 'ham' });
  }
  const result = await trainTextModel(items, { tokenizer: { bucketBits: 10, maxFeatures: 64, maxHeaderFeatures: 16 }, dim: 8, epochs: 10, seed: 7 });
  const bytes = exportFastTextOnnx(result.model, { tokenizer: result.tokenizer, modelName: 'general', modelVersion: 1 });
  return { bytes, result };
}

/** `lookup`: ids INT64 [batch, 2] → total FP32 [batch] = table[id0] + table[id1], table = [1, 10, 100, 1000]; an id beyond 3 fails the run. */
export function lookupModel(): Uint8Array {
  return new OnnxGraphBuilder('lookup')
    .input('ids', 'int64', ['batch', 2])
    .output('total', 'float32', ['batch'])
    .initializer('table', new Float32Array([1, 10, 100, 1000]), [4])
    .initializer('axis', new BigInt64Array([1n]), [1])
    .node('Gather', ['table', 'ids'], ['picked'], { axis: 0 })
    .node('ReduceSum', ['picked', 'axis'], ['total'], { keepdims: 0 })
    .toBytes();
}
