import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const srcDir = fileURLToPath(new URL('../../src/', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * Worker threads cannot load the TypeScript sources vitest runs, so this emits plain JS of src/
 * into `outDir` (type-only syntax stripped, bare package imports pinned to absolute URLs so they
 * resolve from a temp directory). The worker then exercises the very adapter code under test.
 */
export async function transpileSources(outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const pinned = new Map(['better-sqlite3', 'mongodb'].map((p) => [p, pathToFileURL(require.resolve(p)).href]));
  for (const file of await readdir(srcDir)) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    const source = await readFile(join(srcDir, file), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const js = outputText.replace(/from '([^'.][^']*)'/g, (all, spec: string) => {
      const url = pinned.get(spec);
      return url === undefined ? all : `from '${url}'`;
    });
    await writeFile(join(outDir, file.replace(/\.ts$/, '.js')), js);
  }
}
