import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ModelVersionExtras {
  /**
   * Model configuration, written beside the version directories as Triton places it: an object
   * becomes `<model>/config.json`, a string is written verbatim as `<model>/config.pbtxt`.
   */
  config?: object | string;
  /** Version metadata (labels, metrics, tokenizer settings...), written as `<model>/<version>/metadata.json`. */
  metadata?: object;
  /** Further files for the version directory, by file name. */
  files?: Record<string, string | Uint8Array>;
}

/**
 * Writes one model version in Triton's repository layout, `<repository>/<model>/<version>/model.onnx`,
 * and returns the model file's path.
 *
 * A server that scans the repository must never load half a version, so a new version is assembled
 * in a dot-named sibling directory (not a number, so not a version to a scanner), fsynced, then
 * renamed into place in one step. Replacing an existing version renames each file over its old
 * one instead, model.onnx last.
 */
export async function writeModelVersion(
  repositoryDir: string,
  modelName: string,
  version: number,
  bytes: Uint8Array,
  extra: ModelVersionExtras = {},
): Promise<string> {
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError(`model version must be a positive integer, got ${version}`);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(modelName)) throw new RangeError(`invalid model name '${modelName}'`);
  const modelDir = join(repositoryDir, modelName);
  const versionDir = join(modelDir, String(version));
  await mkdir(modelDir, { recursive: true });

  if (extra.config !== undefined) {
    const isText = typeof extra.config === 'string';
    await writeFileAtomic(
      join(modelDir, isText ? 'config.pbtxt' : 'config.json'),
      isText ? (extra.config as string) : `${JSON.stringify(extra.config, null, 2)}\n`,
    );
  }

  const files: [string, string | Uint8Array][] = [];
  if (extra.metadata !== undefined) files.push(['metadata.json', `${JSON.stringify(extra.metadata, null, 2)}\n`]);
  for (const [name, content] of Object.entries(extra.files ?? {})) {
    if (name === 'model.onnx' || name.includes('/') || name.includes('\\') || name.startsWith('.')) {
      throw new RangeError(`invalid extra file name '${name}'`);
    }
    files.push([name, content]);
  }
  files.push(['model.onnx', bytes]);

  if (await exists(versionDir)) {
    for (const [name, content] of files) await writeFileAtomic(join(versionDir, name), content);
    return join(versionDir, 'model.onnx');
  }
  const staging = join(modelDir, `.staging-${version}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);
  try {
    for (const [name, content] of files) await writeSynced(join(staging, name), content);
    await rename(staging, versionDir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    // Someone else created the version meanwhile: fall back to replacing its files.
    if (isCode(err, 'ENOTEMPTY') || isCode(err, 'EEXIST')) {
      for (const [name, content] of files) await writeFileAtomic(join(versionDir, name), content);
    } else {
      throw err;
    }
  }
  return join(versionDir, 'model.onnx');
}

async function writeSynced(path: string, content: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeFileAtomic(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeSynced(tmp, content);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return false;
    throw err;
  }
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
