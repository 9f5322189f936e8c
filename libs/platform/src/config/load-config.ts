import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { isSensitiveKey } from '../logging/redact.js';
import { ConfigError, type ConfigProblem } from './config-error.js';
import { coerceEnvValue, envVarName } from './env.js';
import { asNode, childAt, leaves, objectShapes, type Node } from './schema-walk.js';

export interface LoadConfigOptions {
  /** Variables to read; `process.env` by default. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** YAML file; defaults to `<PREFIX>_CONFIG` from `env`. No file is fine: env and defaults may suffice. */
  file?: string | undefined;
  /** Variable prefix, `AIMASS` by default. */
  envPrefix?: string | undefined;
  /**
   * Reject `<PREFIX>_*` variables that match no key. Off by default because several services in
   * one process (the embedded mode) share one environment, each reading only its own keys.
   */
  strictEnv?: boolean | undefined;
}

interface FileSource {
  file: string;
  doc: Document;
  lines: LineCounter;
}

type Source = { kind: 'env'; name: string; value: string; sensitive: boolean };

const MAX_SHOWN = 60;

function showValue(value: string, sensitive: boolean): string {
  if (sensitive) return '<hidden>';
  const v = value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value;
  return JSON.stringify(v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = target;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (!isPlainObject(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function suggestion(key: string, known: readonly string[]): string {
  const lower = key.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const score = k.toLowerCase() === lower ? 0 : editDistance(key, k);
    if (score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean "${best}"?)` : '';
}

function rangeStart(node: unknown): number | undefined {
  return (node as { range?: readonly number[] } | null | undefined)?.range?.[0];
}

/** `file:line` of the value at `path` (or of its key), or of its deepest existing ancestor. */
function fileLocation(src: FileSource, path: readonly (string | number)[], keyOfLast = false): string {
  let node: unknown = src.doc.contents;
  let offset = rangeStart(node);
  for (const [i, key] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      offset = rangeStart(i === path.length - 1 && keyOfLast ? pair.key : pair.value) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key];
      if (item === undefined) break;
      offset = rangeStart(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? src.file : `${src.file}:${src.lines.linePos(offset).line}`;
}

function readYaml(file: string, problems: ConfigProblem[]): { data: Record<string, unknown>; src?: FileSource } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    problems.push({ path: '', source: file, message: `cannot read config file: ${reason}` });
    return { data: {} };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const src: FileSource = { file, doc, lines };
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0]?.line;
      problems.push({ path: '', source: line ? `${file}:${line}` : file, message: `YAML: ${e.message.split('\n')[0]}` });
    }
    return { data: {}, src };
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return { data: {}, src };
  if (!isPlainObject(data)) {
    problems.push({ path: '', source: file, message: 'expected a mapping of keys at the top level' });
    return { data: {}, src };
  }
  return { data, src };
}

function checkUnknownKeys(value: unknown, node: Node, path: string[], src: FileSource, problems: ConfigProblem[]): void {
  const shapes = objectShapes(node);
  if (shapes.length === 0 || !isPlainObject(value) || shapes.some((s) => s.open)) return;
  const known = [...new Set(shapes.flatMap((s) => Object.keys(s.shape)))];
  for (const [key, child] of Object.entries(value)) {
    const childNode = childAt(node, key);
    const at = [...path, key];
    if (!childNode) {
      problems.push({ path: at.join('.'), source: fileLocation(src, at, true), message: `unknown key${suggestion(key, known)}` });
      // Reported here with its line; removed so a strict schema does not report it a second time.
      delete value[key];
      continue;
    }
    checkUnknownKeys(child, childNode, at, src, problems);
  }
}

const ARTICLE: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  bigint: 'an integer',
  boolean: 'true or false',
  string: 'a string',
  object: 'a mapping',
  record: 'a mapping',
  map: 'a mapping',
  array: 'a list',
  set: 'a list',
  tuple: 'a list',
  date: 'a date',
};

interface IssueLike {
  code: string;
  input?: unknown;
  expected?: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  values?: readonly unknown[];
  format?: string;
  divisor?: number;
  keys?: readonly string[];
}

/** Phrases zod issues as "expected …", the form every config message uses. */
function describeIssue(iss: IssueLike): string | undefined {
  const unit = (origin: string | undefined, n: number | bigint | undefined) =>
    origin === 'string' ? `${n} characters` : origin === 'array' || origin === 'set' ? `${n} items` : String(n);
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required';
      return `expected ${ARTICLE[iss.expected ?? ''] ?? iss.expected}`;
    case 'too_small':
      if (iss.origin === 'number' || iss.origin === 'bigint') return `expected a number ${iss.inclusive ? '>=' : '>'} ${iss.minimum}`;
      return `expected at least ${unit(iss.origin, iss.minimum)}`;
    case 'too_big':
      if (iss.origin === 'number' || iss.origin === 'bigint') return `expected a number ${iss.inclusive ? '<=' : '<'} ${iss.maximum}`;
      return `expected at most ${unit(iss.origin, iss.maximum)}`;
    case 'invalid_value':
      return `expected one of ${(iss.values ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return `expected a valid ${iss.format === 'url' ? 'URL' : iss.format}`;
    case 'not_multiple_of':
      return `expected a multiple of ${iss.divisor}`;
    case 'unrecognized_keys':
      return `unknown key(s): ${(iss.keys ?? []).join(', ')}`;
    case 'invalid_union':
      return 'does not match any of the allowed forms';
    default:
      return undefined;
  }
}

/**
 * Reads configuration from a YAML file and `AIMASS_*` environment variables, validates it with
 * `schema` and returns the parsed value. Environment variables win over the file; the file wins
 * over schema defaults. Env names: see `envVarName` (`grpc.port` ↔ `AIMASS_GRPC__PORT`); an empty
 * variable counts as unset.
 *
 * Throws a ConfigError listing every problem: each names the key, where its value came from and
 * what was expected. Unknown keys in the file are problems too (a typo must not be ignored).
 */
export function loadConfig<S extends z.ZodType>(schema: S, options: LoadConfigOptions = {}): z.output<S> {
  const env = options.env ?? process.env;
  const prefix = options.envPrefix ?? 'AIMASS';
  const root = asNode(schema);
  if (objectShapes(root).length === 0) throw new TypeError('loadConfig: the schema must be an object schema');

  const problems: ConfigProblem[] = [];
  const file = options.file ?? (env[`${prefix}_CONFIG`] || undefined);
  const { data, src } = file !== undefined ? readYaml(file, problems) : { data: {} as Record<string, unknown>, src: undefined };
  // A file that cannot be read or parsed makes every later message noise: report it alone.
  if (problems.length > 0) throw new ConfigError(problems);
  if (src) checkUnknownKeys(data, root, [], src, problems);

  const merged = structuredClone(data);
  const envSources = new Map<string, Source>();
  const envNames = new Map<string, string>();
  for (const leaf of leaves(root)) {
    const name = envVarName(leaf.path, prefix);
    const clash = envNames.get(name);
    if (clash !== undefined) throw new TypeError(`loadConfig: keys ${clash} and ${leaf.path.join('.')} both map to ${name}`);
    envNames.set(name, leaf.path.join('.'));
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    setIn(merged, leaf.path, coerceEnvValue(raw, leaf.node));
    const sensitive = leaf.path.some((k) => isSensitiveKey(k));
    envSources.set(leaf.path.join('.'), { kind: 'env', name, value: raw, sensitive });
  }
  if (options.strictEnv) {
    for (const name of Object.keys(env)) {
      if (!name.startsWith(`${prefix}_`) || name === `${prefix}_CONFIG` || envNames.has(name)) continue;
      problems.push({ path: '', source: name, message: `unknown variable${suggestion(name, [...envNames.keys()])}` });
    }
  }

  const sourceOf = (path: readonly PropertyKey[]): string | undefined => {
    const keys = path.map(String);
    for (let i = keys.length; i > 0; i--) {
      const s = envSources.get(keys.slice(0, i).join('.'));
      if (s) return `${s.name}=${showValue(s.value, s.sensitive)}`;
    }
    if (!src) return undefined;
    let cur: unknown = data;
    for (const key of keys) {
      if (!isPlainObject(cur) && !Array.isArray(cur)) return undefined;
      if (!(key in cur)) return undefined;
      cur = (cur as Record<string, unknown>)[key];
    }
    return fileLocation(
      src,
      path.map((k) => (typeof k === 'number' ? k : String(k))),
    );
  };

  const result = schema.safeParse(merged, { error: (iss) => describeIssue(iss as IssueLike) });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const dotted = issue.path.map(String).join('.');
      const source = sourceOf(issue.path);
      let message = issue.message;
      if (message === 'required' && source === undefined && issue.path.length > 0) {
        const leafName = envNames.has(envVarName(issue.path.map(String), prefix)) ? envVarName(issue.path.map(String), prefix) : undefined;
        message = leafName ? `required (set ${leafName} or ${dotted} in the config file)` : `required (set ${dotted} in the config file)`;
      }
      problems.push({ path: dotted, source, message });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return (result as { data: z.output<S> }).data;
}
