import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import {
  FASTTEXT_ONNX,
  createFeaturizer,
  exportFastTextOnnx,
  inspectOnnxModel,
  parseTokenizerConfig,
  trainTextModel,
  type BagCombiner,
  type LabeledText,
} from '../src/index.js';

/** A small synthetic corpus of mails with headers, multipart and CJK text. */
function corpus(n: number): LabeledText[] {
  const hamWords = ['meeting', 'patch', 'kernel', 'review', 'lunch', 'release', 'build', 'thanks', '会議', 'bug'];
  const spamWords = ['free', 'money', 'viagra', 'winner', 'cheap', 'offer', 'click', 'casino', '免费', 'prize'];
  return Array.from({ length: n }, (_, i) => {
    const spam = i % 3 === 0;
    const pool = spam ? spamWords : hamWords;
    const body = Array.from({ length: 20 + (i % 17) }, (_, j) => pool[(i * 7 + j * 3) % pool.length]).join(' ');
    const text = spam
      ? `From: deals${i}@promo${i % 5}.example.biz\nSubject: ${pool[i % 10]} ${pool[(i + 3) % 10]}\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<html><body><p>${body}</p><a href="http://win${i % 4}.example.biz/">go</a></body></html>\n--b--\n`
      : `From: dev${i % 9}@lists.example.org\nList-Id: <dev.lists.example.org>\nSubject: Re: ${pool[i % 10]}\n\n${body}\n`;
    return { key: `synthetic/${i}`, text, label: spam ? 'spam' : 'ham', group: spam ? 'spam' : 'ham' };
  });
}

async function runOnnx(bytes: Uint8Array, ids: BigInt64Array, batch: number, width: number) {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ [FASTTEXT_ONNX.input]: new ort.Tensor('int64', ids, [batch, width]) });
    const probs = out[FASTTEXT_ONNX.probs] as ort.Tensor;
    const embedding = out[FASTTEXT_ONNX.embedding] as ort.Tensor;
    return { probs: probs.data as Float32Array, probsDims: probs.dims, embedding: embedding.data as Float32Array, embeddingDims: embedding.dims };
  } finally {
    await session.release();
  }
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs(actual[i]! - expected[i]!), `element ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tol);
  }
}

describe.each<BagCombiner>(['sqrtn', 'mean'])('fastText ONNX export (%s)', (combiner) => {
  it('runs in onnxruntime with the same probs and embedding as the TypeScript forward pass', async () => {
    const items = corpus(240);
    const result = await trainTextModel(items, {
      combiner,
      dim: 16,
      epochs: 2,
      tokenizer: { bucketBits: 14, maxFeatures: 256, maxHeaderFeatures: 64 },
    });
    expect(result.metrics.accuracy).toBeGreaterThan(0.95);
    const bytes = exportFastTextOnnx(result.model, { tokenizer: result.tokenizer, modelName: 'general', modelVersion: 3, dataHash: 'abc' });

    // Serving sees only the file: rebuild the featurizer from its metadata.
    const info = inspectOnnxModel(bytes);
    const featurizer = createFeaturizer(parseTokenizerConfig(info.metadata[FASTTEXT_ONNX.metadata.tokenizer]));
    expect(info.inputs).toEqual([{ name: 'ids', type: 'int64', dims: ['batch', 256] }]);
    expect(info.outputs).toEqual([
      { name: 'probs', type: 'float32', dims: ['batch', 2] },
      { name: 'embedding', type: 'float32', dims: ['batch', 16] },
    ]);
    expect(JSON.parse(info.metadata.labels!)).toEqual(['ham', 'spam']);
    expect(info.metadata).toMatchObject({ model_name: 'general', model_version: '3', data_hash: 'abc', embedding_dim: '16', combiner });

    const texts = [...items.slice(0, 5).map((i) => i.text), '', 'plain text, no headers', '你好世界 免费'];
    const ids = featurizer.encodeBatch(texts);
    const out = await runOnnx(bytes, ids, texts.length, 256);
    expect(out.probsDims).toEqual([texts.length, 2]);
    expect(out.embeddingDims).toEqual([texts.length, 16]);
    texts.forEach((text, row) => {
      const expected = result.model.predict(featurizer.encode(text).ids);
      expectClose(out.probs.subarray(row * 2, row * 2 + 2), expected.probs);
      expectClose(out.embedding.subarray(row * 16, row * 16 + 16), expected.embedding);
    });
    // An all-padding row (the empty text) has a zero embedding and the softmax of the bias.
    const empty = texts.indexOf('');
    expect(Array.from(out.embedding.subarray(empty * 16, empty * 16 + 16)).every((v) => v === 0)).toBe(true);

    // Ids outside [1, buckets) count as padding rather than failing the whole batch.
    const row = featurizer.encodePadded(texts[0]!);
    const hostile = row.slice();
    hostile[250] = -5n;
    hostile[251] = 1n << 40n;
    hostile[252] = BigInt(2 ** 14);
    hostile[253] = -(1n << 62n);
    const both = new BigInt64Array([...row, ...hostile]);
    const guarded = await runOnnx(bytes, both, 2, 256);
    expectClose(guarded.probs.subarray(2, 4), guarded.probs.subarray(0, 2), 0);
    expectClose(guarded.embedding.subarray(16, 32), guarded.embedding.subarray(0, 16), 0);
  });
});

describe('exportFastTextOnnx', () => {
  it('sums the bag through the padding mask, the same for a lone row as inside a batch', async () => {
    const result = await trainTextModel(corpus(60), { dim: 8, epochs: 1, tokenizer: { bucketBits: 10, maxFeatures: 64, maxHeaderFeatures: 16 } });
    // Row 0 (padding) made non-zero: only the mask keeps it out of the sum now.
    result.model.embeddings.fill(0.5, 0, 8);
    const bytes = exportFastTextOnnx(result.model, { tokenizer: result.tokenizer });
    expect(inspectOnnxModel(bytes).metadata[FASTTEXT_ONNX.metadata.graphRevision]).toBe(String(FASTTEXT_ONNX.graphRevision));
    const featurizer = createFeaturizer(result.tokenizer);
    const rows = ['', 'From: a@b.example\nSubject: free money\n\nclick here now'].map((t) => featurizer.encodePadded(t));
    const lone = await runOnnx(bytes, rows[1]!, 1, 64);
    const batch = await runOnnx(bytes, new BigInt64Array([...rows[0]!, ...rows[1]!]), 2, 64);
    expect(Array.from(batch.embedding.subarray(0, 8))).toEqual(new Array(8).fill(0));
    expectClose(lone.embedding, batch.embedding.subarray(8, 16), 1e-6);
    expectClose(lone.probs, batch.probs.subarray(2, 4), 1e-6);
    const expected = result.model.predict(featurizer.encode('From: a@b.example\nSubject: free money\n\nclick here now').ids);
    // The TypeScript pass never reads row 0, so it agrees with the masked graph.
    expectClose(lone.embedding, expected.embedding);
  });

  it('refuses a tokenizer whose vocabulary does not match the embedding table', async () => {
    const result = await trainTextModel(corpus(30), { dim: 4, epochs: 1, tokenizer: { bucketBits: 10, maxFeatures: 64, maxHeaderFeatures: 16 } });
    expect(() => exportFastTextOnnx(result.model, { tokenizer: { ...result.tokenizer, bucketBits: 11 } })).toThrow(/buckets/);
  });
});
