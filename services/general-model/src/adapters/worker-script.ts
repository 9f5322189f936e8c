import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type TypeScript from 'typescript';

let cached: Promise<URL> | undefined;

/**
 * The inference worker's entry. A Worker cannot load TypeScript, so:
 * - from the built package (`dist/adapters/worker-script.js`), it is the compiled `onnx-worker.js`
 *   beside this file;
 * - from the TypeScript sources (vitest resolves workspace packages to `src/` through the
 *   `@aimass/source` condition, and so do other packages' tests that start this service), the one
 *   file `onnx-worker.ts` is transpiled with the workspace's `typescript` into a temp directory,
 *   keyed by a hash of its text. The worker imports only Node built-ins and gets onnxruntime-node by
 *   absolute path, so it runs from anywhere.
 */
export function resolveWorkerScript(): Promise<URL> {
  cached ??= locate();
  return cached;
}

async function locate(): Promise<URL> {
  const compiled = new URL('./onnx-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return compiled;
  const sourcePath = fileURLToPath(new URL('./onnx-worker.ts', import.meta.url));
  if (!existsSync(sourcePath)) throw new Error(`inference worker script not found next to ${fileURLToPath(import.meta.url)}`);
  const source = await readFile(sourcePath, 'utf8');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'aimass-general-model-worker');
  const target = join(dir, `onnx-worker-${hash}.mjs`);
  if (existsSync(target)) return pathToFileURL(target);
  let ts: typeof TypeScript;
  try {
    ts = (await import('typescript')).default;
  } catch (err) {
    throw new Error('running general-model from TypeScript sources needs the typescript package to build its worker; build the package (tsc -b) instead', {
      cause: err,
    });
  }
  const { outputText } = ts.transpileModule(source, {
    fileName: 'onnx-worker.ts',
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  await mkdir(dir, { recursive: true });
  // Write then rename, so parallel test processes never load a half-written file.
  const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, outputText);
  await rename(tmp, target);
  return pathToFileURL(target);
}
