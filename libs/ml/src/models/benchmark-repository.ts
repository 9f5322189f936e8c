import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildEncoder, resolveEncoderSpec, type EncoderOptions } from './encoder.js';
import type { BuiltModel } from './layers.js';
import { buildMlp, resolveMlpSpec, type MlpOptions } from './mlp.js';
import { writeModelVersion } from './repository.js';

export type BenchmarkModelName = 'medium' | 'heavy';

export interface BenchmarkRepositoryOptions {
  /** Which models to write; default both. */
  include?: BenchmarkModelName[];
  /** Seed for both models; default 1. */
  seed?: number;
  /** Blocks of the heavy encoder; default 4. */
  heavyBlocks?: number;
  /** Overrides for the medium MLP (e.g. tiny dims in tests). */
  medium?: Partial<Omit<MlpOptions, 'seed'>>;
  /** Overrides for the heavy encoder (e.g. hidden 16 in tests). */
  heavy?: Partial<Omit<EncoderOptions, 'seed'>>;
  /** Version directory to write; default 1. */
  version?: number;
  /**
   * Keep a version already on disk when its metadata.json records the same spec (building the heavy
   * model takes seconds and 75 MB of writes); default true.
   */
  reuse?: boolean;
  onProgress?: (event: BenchmarkBuildProgress) => void;
}

export type BenchmarkBuildProgress =
  | { model: BenchmarkModelName; stage: 'building'; spec: Record<string, unknown> }
  | { model: BenchmarkModelName; stage: 'writing'; bytes: number }
  | { model: BenchmarkModelName; stage: 'reused' | 'done'; path: string; ms: number };

export interface BenchmarkModelEntry {
  name: BenchmarkModelName;
  /** Path of model.onnx. */
  path: string;
  inputName: string;
  /** Input dims with 'batch' first. */
  inputDims: (number | string)[];
  outputName: string;
  flopsPerRow: number;
  parameters: number;
  bytes: number;
  /** True when an identical version already on disk was kept. */
  reused: boolean;
  spec: Record<string, unknown>;
}

/** The metadata.json written beside each benchmark model. */
interface BenchmarkMetadata {
  labels: string[];
  spec: Record<string, unknown>;
  flops_per_row: number;
  parameters: number;
  input: BuiltModel['input'];
  output: BuiltModel['output'];
  bytes: number;
}

/**
 * Writes the benchmark's random-weight models into a Triton-layout repository: `medium/<v>/model.onnx`
 * (the MLP 768→3072→768→2) and `heavy/<v>/model.onnx` (the encoder, `heavyBlocks` blocks over 128
 * positions), each with a metadata.json recording its spec, FLOPs per row and signature.
 */
export async function buildBenchmarkRepository(dir: string, options: BenchmarkRepositoryOptions = {}): Promise<BenchmarkModelEntry[]> {
  const include = options.include ?? ['medium', 'heavy'];
  const seed = options.seed ?? 1;
  const version = options.version ?? 1;
  const reuse = options.reuse ?? true;
  const entries: BenchmarkModelEntry[] = [];
  for (const name of include) {
    const started = performance.now();
    const build = (): BuiltModel =>
      name === 'medium'
        ? buildMlp({ ...options.medium, seed, name: 'medium' })
        : buildEncoder({ blocks: options.heavyBlocks, ...options.heavy, seed, name: 'heavy' });
    const wanted = specOf(name, seed, options);
    const versionDir = join(dir, name, String(version));
    if (reuse) {
      const existing = await readMetadata(join(versionDir, 'metadata.json'));
      if (existing && JSON.stringify(existing.spec) === JSON.stringify(wanted)) {
        const path = join(versionDir, 'model.onnx');
        options.onProgress?.({ model: name, stage: 'reused', path, ms: performance.now() - started });
        entries.push(entryOf(name, path, existing, true));
        continue;
      }
    }
    options.onProgress?.({ model: name, stage: 'building', spec: wanted });
    const model = build();
    options.onProgress?.({ model: name, stage: 'writing', bytes: model.bytes.length });
    const metadata: BenchmarkMetadata = {
      labels: model.labels,
      spec: model.spec,
      flops_per_row: model.flopsPerRow,
      parameters: model.parameters,
      input: model.input,
      output: model.output,
      bytes: model.bytes.length,
    };
    const path = await writeModelVersion(dir, name, version, model.bytes, { metadata });
    options.onProgress?.({ model: name, stage: 'done', path, ms: performance.now() - started });
    entries.push(entryOf(name, path, metadata, false));
  }
  return entries;
}

/** The spec the builder will record, resolved without building (to compare with what is on disk). */
function specOf(name: BenchmarkModelName, seed: number, options: BenchmarkRepositoryOptions): Record<string, unknown> {
  return name === 'medium'
    ? { ...resolveMlpSpec({ ...options.medium, seed, name: 'medium' }) }
    : { ...resolveEncoderSpec({ blocks: options.heavyBlocks, ...options.heavy, seed, name: 'heavy' }) };
}

async function readMetadata(path: string): Promise<BenchmarkMetadata | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<BenchmarkMetadata>;
    return parsed.spec && parsed.input && parsed.output ? (parsed as BenchmarkMetadata) : undefined;
  } catch {
    // Absent or unreadable: build afresh.
    return undefined;
  }
}

function entryOf(name: BenchmarkModelName, path: string, m: BenchmarkMetadata, reused: boolean): BenchmarkModelEntry {
  return {
    name,
    path,
    inputName: m.input.name,
    inputDims: m.input.dims,
    outputName: m.output.name,
    flopsPerRow: m.flops_per_row,
    parameters: m.parameters,
    bytes: m.bytes,
    reused,
    spec: m.spec,
  };
}
