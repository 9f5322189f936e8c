import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildBenchmarkRepository, type BenchmarkBuildProgress } from './benchmark-repository.js';
import { writeModelVersion } from './repository.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aimass-ml-repo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeModelVersion', () => {
  it('writes the Triton layout with metadata, files and a JSON or pbtxt config, leaving no staging behind', async () => {
    const path = await writeModelVersion(dir, 'm', 3, Uint8Array.from([1, 2, 3]), {
      metadata: { labels: ['ham', 'spam'] },
      config: { max_batch_size: 8 },
      files: { 'tokenizer.json': '{"v":1}' },
    });
    expect(path).toBe(join(dir, 'm', '3', 'model.onnx'));
    expect([...(await readFile(path))]).toEqual([1, 2, 3]);
    expect(JSON.parse(await readFile(join(dir, 'm', '3', 'metadata.json'), 'utf8'))).toEqual({ labels: ['ham', 'spam'] });
    expect(await readFile(join(dir, 'm', '3', 'tokenizer.json'), 'utf8')).toBe('{"v":1}');
    expect(JSON.parse(await readFile(join(dir, 'm', 'config.json'), 'utf8'))).toEqual({ max_batch_size: 8 });
    expect((await readdir(join(dir, 'm'))).sort()).toEqual(['3', 'config.json']);

    await writeModelVersion(dir, 'm', 4, Uint8Array.from([4]), { config: 'max_batch_size: 16\n' });
    expect(await readFile(join(dir, 'm', 'config.pbtxt'), 'utf8')).toBe('max_batch_size: 16\n');
    expect((await readdir(join(dir, 'm'))).sort()).toEqual(['3', '4', 'config.json', 'config.pbtxt']);
  });

  it('replaces the files of an existing version without temporary files left', async () => {
    await writeModelVersion(dir, 'm', 1, Uint8Array.from([1]), { metadata: { v: 1 } });
    await writeFile(join(dir, 'm', '1', 'notes.txt'), 'kept');
    await writeModelVersion(dir, 'm', 1, Uint8Array.from([2, 2]), { metadata: { v: 2 } });
    expect([...(await readFile(join(dir, 'm', '1', 'model.onnx')))]).toEqual([2, 2]);
    expect(JSON.parse(await readFile(join(dir, 'm', '1', 'metadata.json'), 'utf8'))).toEqual({ v: 2 });
    expect((await readdir(join(dir, 'm', '1'))).sort()).toEqual(['metadata.json', 'model.onnx', 'notes.txt']);
  });

  it('rejects a bad version, model name or extra file name', async () => {
    await expect(writeModelVersion(dir, 'm', 0, new Uint8Array(1))).rejects.toThrow(/positive integer/);
    await expect(writeModelVersion(dir, '../escape', 1, new Uint8Array(1))).rejects.toThrow(/invalid model name/);
    await expect(writeModelVersion(dir, 'm', 1, new Uint8Array(1), { files: { '../x': 'a' } })).rejects.toThrow(/invalid extra file/);
    await mkdir(join(dir, 'm'), { recursive: true });
    expect(await readdir(join(dir, 'm'))).toEqual([]);
  });
});

describe('buildBenchmarkRepository', () => {
  const tiny = {
    medium: { dims: [12, 24, 12, 2] },
    heavy: { hidden: 8, ffn: 16, positions: 3 },
    heavyBlocks: 2,
  };

  it('writes runnable medium and heavy models with progress, then reuses them', async () => {
    const events: BenchmarkBuildProgress[] = [];
    const entries = await buildBenchmarkRepository(dir, { ...tiny, onProgress: (e) => events.push(e) });
    expect(entries.map((e) => e.name)).toEqual(['medium', 'heavy']);
    expect(events.map((e) => `${e.model}:${e.stage}`)).toEqual([
      'medium:building',
      'medium:writing',
      'medium:done',
      'heavy:building',
      'heavy:writing',
      'heavy:done',
    ]);
    const heavy = entries[1];
    expect(heavy).toMatchObject({ path: join(dir, 'heavy', '1', 'model.onnx'), inputName: 'input', inputDims: ['batch', 3, 8], outputName: 'probs', reused: false });
    expect(heavy?.flopsPerRow).toBe(2 * 3 * 4 * 8 * 16 + 2 * 8 * 2);
    expect(heavy?.spec).toMatchObject({ kind: 'encoder', blocks: 2 });

    for (const entry of entries) {
      const session = await ort.InferenceSession.create(entry.path);
      try {
        const dims = entry.inputDims.map((d) => (d === 'batch' ? 2 : Number(d)));
        const n = dims.reduce((a, b) => a * b, 1);
        const out = await session.run({ [entry.inputName]: new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.cos(i)), dims) });
        const probs = out[entry.outputName]?.data as Float32Array;
        expect(probs.length).toBe(4);
        expect((probs[0] ?? 0) + (probs[1] ?? 0)).toBeCloseTo(1, 5);
      } finally {
        await session.release();
      }
    }

    const before = await readFile(join(dir, 'medium', '1', 'model.onnx'));
    events.length = 0;
    const again = await buildBenchmarkRepository(dir, { ...tiny, onProgress: (e) => events.push(e) });
    expect(again.map((e) => e.reused)).toEqual([true, true]);
    expect(again.map((e) => e.flopsPerRow)).toEqual(entries.map((e) => e.flopsPerRow));
    expect(events.map((e) => e.stage)).toEqual(['reused', 'reused']);

    // A different spec is rebuilt; the same spec built without reuse is byte-identical.
    const rebuilt = await buildBenchmarkRepository(dir, { ...tiny, heavyBlocks: 3, include: ['heavy'] });
    expect(rebuilt.map((e) => [e.name, e.reused, e.spec['blocks']])).toEqual([['heavy', false, 3]]);
    await buildBenchmarkRepository(dir, { ...tiny, include: ['medium'], reuse: false });
    expect((await readFile(join(dir, 'medium', '1', 'model.onnx'))).equals(before)).toBe(true);
  });
});
