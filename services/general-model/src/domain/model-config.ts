import { z } from 'zod';
import { parsePbtxt, type PbMessage, type PbValue } from './pbtxt.js';

export type VersionPolicy = { kind: 'latest'; numVersions: number } | { kind: 'all' } | { kind: 'specific'; versions: number[] };

/** What this server reads from a model's configuration; everything is optional (service defaults apply). */
export interface ModelConfig {
  /** 0: the model does not batch (dim 0 is not a batch dimension). */
  maxBatchSize?: number | undefined;
  versionPolicy?: VersionPolicy | undefined;
  maxQueueDelayMs?: number | undefined;
  preferredBatchSizes?: number[] | undefined;
  /** Rows the batcher queue holds at most (Triton's default_queue_policy.max_queue_size, counted in rows here). */
  maxQueueRows?: number | undefined;
  /** Accept NaN/Inf in floating-point inputs (`parameters { key: "allow_non_finite" ... }`). */
  allowNonFinite?: boolean | undefined;
  /** File name in each version directory; `model.onnx` by default. */
  defaultModelFilename?: string | undefined;
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

const REPEATED = new Set(['preferred_batch_size', 'versions', 'parameters', 'input', 'output', 'instance_group', 'dims']);

/** The schema-less pbtxt tree in the shape of Triton's JSON model configuration. */
function pbtxtToJson(msg: PbMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, values] of Object.entries(msg)) {
    const conv = (v: PbValue): unknown => (typeof v === 'object' ? pbtxtToJson(v) : v);
    if (key === 'parameters') {
      const map: Record<string, unknown> = {};
      for (const entry of values) {
        if (typeof entry !== 'object') continue;
        const k = entry['key']?.[0];
        const v = entry['value']?.[0];
        if (typeof k === 'string') map[k] = typeof v === 'object' ? pbtxtToJson(v) : v;
      }
      out[key] = map;
    } else if (REPEATED.has(key)) {
      out[key] = values.map(conv);
    } else {
      out[key] = conv(values[values.length - 1]!);
    }
  }
  return out;
}

const camel = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

// Parameter names are user keys (map keys), not fields: leave them as written.
function camelKeys(value: unknown, inParameters = false): unknown {
  if (Array.isArray(value)) return value.map((v) => camelKeys(v));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = inParameters ? k : camel(k);
    out[key] = camelKeys(v, !inParameters && key === 'parameters');
  }
  return out;
}

const count = z.number().int().min(1);
const schema = z.looseObject({
  name: z.string().optional(),
  platform: z.string().optional(),
  backend: z.string().optional(),
  maxBatchSize: z.number().int().min(0).optional(),
  defaultModelFilename: z.string().min(1).optional(),
  versionPolicy: z
    .union([
      z.strictObject({ latest: z.strictObject({ numVersions: count.optional() }) }),
      z.strictObject({ all: z.strictObject({}) }),
      z.strictObject({ specific: z.strictObject({ versions: z.array(count).min(1) }) }),
    ])
    .optional(),
  dynamicBatching: z
    .looseObject({
      maxQueueDelayMicroseconds: z.number().min(0).optional(),
      preferredBatchSize: z.array(count).optional(),
      defaultQueuePolicy: z.looseObject({ maxQueueSize: z.number().int().min(0).optional() }).optional(),
    })
    .optional(),
  parameters: z.record(z.string(), z.union([z.looseObject({ stringValue: z.string() }), z.string(), z.boolean()])).optional(),
  /** JSON shorthand for the allow_non_finite parameter. */
  allowNonFinite: z.boolean().optional(),
});

function truthy(v: unknown): boolean {
  const s = typeof v === 'object' && v !== null ? (v as { stringValue: string }).stringValue : v;
  return s === true || (typeof s === 'string' && ['true', '1', 'yes', 'on'].includes(s.toLowerCase()));
}

/** Normalizes a Triton-style configuration object (snake_case or camelCase keys) into a ModelConfig. */
export function normalizeModelConfig(raw: unknown, source: string): ModelConfig {
  const parsed = schema.safeParse(camelKeys(raw));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ModelConfigError(`${source}: ${problems.join('; ')}`);
  }
  const c = parsed.data;
  if (c.platform !== undefined && c.platform !== 'onnxruntime_onnx') {
    throw new ModelConfigError(`${source}: platform '${c.platform}' is not served here (only onnxruntime_onnx)`);
  }
  if (c.backend !== undefined && c.backend !== 'onnxruntime') {
    throw new ModelConfigError(`${source}: backend '${c.backend}' is not served here (only onnxruntime)`);
  }
  let versionPolicy: VersionPolicy | undefined;
  const vp = c.versionPolicy;
  if (vp && 'latest' in vp) versionPolicy = { kind: 'latest', numVersions: vp.latest.numVersions ?? 1 };
  else if (vp && 'all' in vp) versionPolicy = { kind: 'all' };
  else if (vp && 'specific' in vp) versionPolicy = { kind: 'specific', versions: [...new Set(vp.specific.versions)].sort((a, b) => a - b) };
  const db = c.dynamicBatching;
  const allowParam = c.parameters?.['allow_non_finite'];
  return {
    maxBatchSize: c.maxBatchSize,
    versionPolicy,
    maxQueueDelayMs: db?.maxQueueDelayMicroseconds === undefined ? undefined : db.maxQueueDelayMicroseconds / 1000,
    preferredBatchSizes: db?.preferredBatchSize,
    maxQueueRows: db?.defaultQueuePolicy?.maxQueueSize || undefined,
    allowNonFinite: c.allowNonFinite ?? (allowParam === undefined ? undefined : truthy(allowParam)),
    defaultModelFilename: c.defaultModelFilename,
  };
}

/** Reads `config.pbtxt` text. */
export function parseModelConfigPbtxt(text: string, source = 'config.pbtxt'): ModelConfig {
  let tree: PbMessage;
  try {
    tree = parsePbtxt(text);
  } catch (err) {
    throw new ModelConfigError(`${source}: ${(err as Error).message}`);
  }
  return normalizeModelConfig(pbtxtToJson(tree), source);
}

/** Reads `config.json` text (Triton's JSON model configuration, or the same keys in camelCase). */
export function parseModelConfigJson(text: string, source = 'config.json'): ModelConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelConfigError(`${source}: ${(err as Error).message}`);
  }
  return normalizeModelConfig(value, source);
}

/** Later configs override earlier ones, key by key. */
export function mergeModelConfigs(...configs: readonly (ModelConfig | undefined)[]): ModelConfig {
  const out: ModelConfig = {};
  for (const c of configs) {
    if (!c) continue;
    for (const [k, v] of Object.entries(c)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** `latest`, `latest:N`, `all`, `specific:1,3`: the compact form used in service configuration. */
export function parseVersionPolicy(text: string): VersionPolicy {
  const t = text.trim().toLowerCase();
  if (t === 'all') return { kind: 'all' };
  const latest = /^latest(?::(\d+))?$/.exec(t);
  if (latest) {
    const n = latest[1] === undefined ? 1 : Number(latest[1]);
    if (n >= 1) return { kind: 'latest', numVersions: n };
  }
  const specific = /^specific:(\d+(?:,\d+)*)$/.exec(t.replace(/\s+/g, ''));
  if (specific) {
    const versions = [...new Set(specific[1]!.split(',').map(Number))].filter((v) => v >= 1).sort((a, b) => a - b);
    if (versions.length > 0) return { kind: 'specific', versions };
  }
  throw new ModelConfigError(`invalid version policy '${text}' (expected latest, latest:N, all or specific:1,3)`);
}

export function formatVersionPolicy(policy: VersionPolicy): string {
  switch (policy.kind) {
    case 'all':
      return 'all';
    case 'latest':
      return `latest:${policy.numVersions}`;
    case 'specific':
      return `specific:${policy.versions.join(',')}`;
  }
}

/**
 * The versions a policy serves out of those present on disk (ascending), and the specific versions
 * it names that are missing.
 */
export function selectVersions(policy: VersionPolicy, available: readonly number[]): { versions: number[]; missing: number[] } {
  const sorted = [...new Set(available)].sort((a, b) => a - b);
  switch (policy.kind) {
    case 'all':
      return { versions: sorted, missing: [] };
    case 'latest':
      return { versions: sorted.slice(Math.max(0, sorted.length - policy.numVersions)), missing: [] };
    case 'specific': {
      const present = new Set(sorted);
      return {
        versions: policy.versions.filter((v) => present.has(v)),
        missing: policy.versions.filter((v) => !present.has(v)),
      };
    }
  }
}
