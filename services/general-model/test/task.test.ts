import { status } from '@grpc/grpc-js';
import { createFeaturizer } from '@aimass/ml';
import { v1 } from '@aimass/proto';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addModel, linearModel, trainToyTextModel } from './support/models.js';
import { call, callError, startService, taskClient } from './support/harness.js';

type Toy = Awaited<ReturnType<typeof trainToyTextModel>>;

describe('task API (aimass.v1.GeneralModelService)', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>>;
  let client: ReturnType<typeof taskClient>;
  let toy: Toy;

  beforeAll(async () => {
    dir = await tempDir('gm-task');
    toy = await trainToyTextModel();
    await addModel(dir.path, 'general', 1, toy.bytes, { metadata: { labels: ['ham', 'spam'], note: 'toy' } });
    await addModel(dir.path, 'linear', 1, linearModel());
    service = await startService(dir.path, { batching: { maxBatchSize: 4 } });
    client = taskClient(service.address);
  });
  afterAll(async () => {
    client?.close();
    await service?.stop();
    await dir?.remove();
  });

  const text = (value: string): v1.InputPayload => ({ kind: { $case: 'text', value } });

  it('classifies text with the default model: label, probabilities in label order, embedding, version', async () => {
    const res = await call(client, client.classify, {
      model: undefined,
      inputs: [text('win free money now, click here'), text('project review notes for the team meeting')],
      includeEmbedding: true,
      includeLogits: true,
    });
    expect(res.model).toEqual({ name: 'general', version: '1' });
    expect(res.labels).toEqual(['ham', 'spam']);
    expect(res.results.map((r) => r.label)).toEqual(['spam', 'ham']);
    for (const r of res.results) {
      expect(r.probabilities).toHaveLength(2);
      expect(r.probabilities[0]! + r.probabilities[1]!).toBeCloseTo(1, 5);
      expect(r.embedding).toHaveLength(8);
      expect(r.logits.map(Math.exp)[1]).toBeCloseTo(r.probabilities[1]!, 5);
    }
  });

  it('gives the probabilities the trained model gives in process for the same features', async () => {
    const sample = 'claim your free prize';
    const res = await call(client, client.classify, { model: { name: 'general', version: '1' }, inputs: [text(sample)], includeEmbedding: false, includeLogits: false });
    const featurizer = createFeaturizer(toy.result.tokenizer);
    const expected = toy.result.model.predict(featurizer.encode(`\n${sample}`).ids).probs;
    expect(res.results[0]!.probabilities[1]).toBeCloseTo(expected[1]!, 5);
    expect(res.results[0]!.embedding).toEqual([]);
  });

  it('reads mail and raw RFC 822 inputs', async () => {
    const res = await call(client, client.classify, {
      model: undefined,
      inputs: [
        { kind: { $case: 'mail', value: { subject: 'free money', body: 'click here to claim your prize now', headers: { from: 'x@spam.example' } } } },
        { kind: { $case: 'raw', value: { contentType: 'message/rfc822', data: Buffer.from('Subject: agenda\n\nnotes from the team meeting') } } },
      ],
      includeEmbedding: false,
      includeLogits: false,
    });
    expect(res.results.map((r) => r.label)).toEqual(['spam', 'ham']);
  });

  it("ignores a mail's body-encoding headers: its body is already decoded text", async () => {
    const mail = (headers: Record<string, string>): v1.InputPayload => ({ kind: { $case: 'mail', value: { subject: 'free money', body: 'click here to claim your prize now', headers } } });
    const res = await call(client, client.classify, {
      model: undefined,
      inputs: [
        mail({ from: 'x@spam.example' }),
        // As a backend forwards the headers of a base64, multipart mail after decoding its body.
        mail({ from: 'x@spam.example', 'Content-Transfer-Encoding': 'base64', 'content-type': 'multipart/alternative; boundary="b1"' }),
      ],
      includeEmbedding: true,
      includeLogits: false,
    });
    expect(res.results[1]!.probabilities).toEqual(res.results[0]!.probabilities);
    expect(res.results[1]!.embedding).toEqual(res.results[0]!.embedding);
    expect(res.results[1]!.label).toBe('spam');
  });

  it('runs a request of more inputs than the max batch size through the batcher in several batches', async () => {
    const before = service.stats().batchers['general:1']!;
    const inputs = Array.from({ length: 10 }, (_, i) => text(i % 2 ? 'free money offer' : 'team meeting agenda'));
    const res = await call(client, client.embed, { model: undefined, inputs });
    expect(res.dimension).toBe(8);
    expect(res.embeddings).toHaveLength(10);
    expect(res.embeddings[0]!.values).toHaveLength(8);
    expect(res.embeddings[2]!.values).toEqual(res.embeddings[0]!.values);
    const after = service.stats().batchers['general:1']!;
    expect(after.rows - before.rows).toBe(10);
    expect(after.largestBatch).toBeLessThanOrEqual(4);
  });

  it('lists the models with state, default flag, labels, embedding size, hash and load time', async () => {
    const res = await call(client, client.listModels, { page: undefined });
    const general = res.models.find((m) => m.model?.name === 'general')!;
    expect(general).toMatchObject({
      model: { name: 'general', version: '1' },
      state: v1.ModelState.MODEL_STATE_READY,
      isDefault: true,
      labels: ['ham', 'spam'],
      embeddingDimension: 8,
    });
    expect(general.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(general.loadedAt).toBeInstanceOf(Date);
    expect(res.models.find((m) => m.model?.name === 'linear')).toMatchObject({ isDefault: false, embeddingDimension: 0 });
    const first = await call(client, client.listModels, { page: { pageSize: 1, pageToken: '' } });
    expect(first.models).toHaveLength(1);
    expect(first.nextPageToken).toBe('1');
    const second = await call(client, client.listModels, { page: { pageSize: 1, pageToken: first.nextPageToken } });
    expect(second.models[0]!.model).not.toEqual(first.models[0]!.model);
    expect(second.nextPageToken).toBe('');
  });

  it('answers INVALID_ARGUMENT, NOT_FOUND and FAILED_PRECONDITION for what it cannot serve, and keeps serving', async () => {
    const cases: [Promise<unknown>, number, RegExp][] = [
      [call(client, client.classify, { model: undefined, inputs: [], includeEmbedding: false, includeLogits: false }), status.INVALID_ARGUMENT, /inputs must not be empty/],
      [
        call(client, client.classify, { model: undefined, inputs: [text('ok'), { kind: { $case: 'features', value: { values: {} } } }], includeEmbedding: false, includeLogits: false }),
        status.INVALID_ARGUMENT,
        /inputs\[1\]: typed features are not supported/,
      ],
      [
        call(client, client.embed, { model: undefined, inputs: [{ kind: { $case: 'raw', value: { contentType: 'image/png', data: Buffer.alloc(3) } } }] }),
        status.INVALID_ARGUMENT,
        /inputs\[0\]: raw content type 'image\/png' is not supported/,
      ],
      [call(client, client.embed, { model: undefined, inputs: [{ kind: undefined }] }), status.INVALID_ARGUMENT, /inputs\[0\]: empty input/],
      [call(client, client.embed, { model: { name: 'nope', version: '' }, inputs: [text('x')] }), status.NOT_FOUND, /model 'nope'/],
      [call(client, client.embed, { model: { name: 'general', version: '5' }, inputs: [text('x')] }), status.NOT_FOUND, /no loaded version '5'/],
      [call(client, client.embed, { model: { name: 'linear', version: '' }, inputs: [text('x')] }), status.FAILED_PRECONDITION, /no tokenizer configuration/],
      [call(client, client.listModels, { page: { pageSize: 0, pageToken: 'abc' } }), status.INVALID_ARGUMENT, /invalid page_token/],
    ];
    for (const [promise, code, message] of cases) {
      const err = await callError(promise);
      expect(err.code).toBe(code);
      expect(err.details).toMatch(message);
    }
    const ok = await call(client, client.classify, { model: undefined, inputs: [text('free money')], includeEmbedding: false, includeLogits: false });
    expect(ok.results).toHaveLength(1);
  });
});
