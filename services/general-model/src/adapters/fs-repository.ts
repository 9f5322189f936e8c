import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '@aimass/platform';
import { mergeModelConfigs, parseModelConfigJson, parseModelConfigPbtxt, type ModelConfig } from '../domain/model-config.js';

/** Model names as Triton accepts them, and never a path. */
const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const VERSION_DIR = /^\d+$/;
export const DEFAULT_MODEL_FILENAME = 'model.onnx';

export interface RepositoryModel {
  name: string;
  dir: string;
  config: ModelConfig;
  /** Config files read, e.g. ['config.pbtxt']. */
  configFiles: string[];
  /** Version directories holding the model file, ascending. */
  versions: number[];
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/**
 * A model repository on disk in Triton's layout: `<root>/<model>/<version>/model.onnx`, with an
 * optional `config.pbtxt` and/or `config.json` beside the version directories. Directories whose
 * name is not a number are not versions (writers stage new versions under dot-names and rename).
 */
export class FsModelRepository {
  constructor(readonly root: string) {}

  /** Model directory names, sorted. A missing repository directory is an empty repository. */
  async list(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw err;
    }
    return entries
      .filter((e) => e.isDirectory() && MODEL_NAME.test(e.name))
      .map((e) => e.name)
      .sort();
  }

  async exists(name: string): Promise<boolean> {
    if (!MODEL_NAME.test(name)) return false;
    try {
      return (await stat(join(this.root, name))).isDirectory();
    } catch {
      return false;
    }
  }

  /**
   * Reads a model's configuration and its versions. Both config files may be present: config.json
   * is applied over config.pbtxt. Throws NotFoundError for a model that is not in the repository
   * and ModelConfigError for an invalid configuration.
   */
  async read(name: string): Promise<RepositoryModel> {
    if (!(await this.exists(name))) throw new NotFoundError(`model '${name}' is not in the repository`);
    const dir = join(this.root, name);
    const pbtxt = await readIfExists(join(dir, 'config.pbtxt'));
    const json = await readIfExists(join(dir, 'config.json'));
    const configFiles: string[] = [];
    if (pbtxt !== undefined) configFiles.push('config.pbtxt');
    if (json !== undefined) configFiles.push('config.json');
    const config = mergeModelConfigs(
      pbtxt === undefined ? undefined : parseModelConfigPbtxt(pbtxt, `${name}/config.pbtxt`),
      json === undefined ? undefined : parseModelConfigJson(json, `${name}/config.json`),
    );
    const filename = config.defaultModelFilename ?? DEFAULT_MODEL_FILENAME;
    const versions: number[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !VERSION_DIR.test(entry.name)) continue;
      const version = Number(entry.name);
      if (Number.isSafeInteger(version) && (await isFile(join(dir, entry.name, filename)))) versions.push(version);
    }
    versions.sort((a, b) => a - b);
    return { name, dir, config, configFiles, versions };
  }

  modelPath(model: RepositoryModel, version: number): string {
    return join(model.dir, String(version), model.config.defaultModelFilename ?? DEFAULT_MODEL_FILENAME);
  }

  /** The version's `metadata.json` (labels, tokenizer settings, metrics...), if any. */
  async versionMetadata(model: RepositoryModel, version: number): Promise<Record<string, unknown> | undefined> {
    const text = await readIfExists(join(model.dir, String(version), 'metadata.json'));
    if (text === undefined) return undefined;
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${model.name}/${version}/metadata.json is not a JSON object`);
    return value as Record<string, unknown>;
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
