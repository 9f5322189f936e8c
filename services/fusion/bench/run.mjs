// Runs a benchmark script of this folder: Node 20 has no TypeScript loader, so this builds the
// packages it imports (tsc -b), transpiles the script into bench/dist/ and starts it there, where
// `@aimass/*` resolve to the built packages. Usage: node bench/run.mjs [coalescing.ts] [options]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = dirname(here);
const require = createRequire(import.meta.url);
const ts = require('typescript');

const args = process.argv.slice(2);
const script = args[0]?.endsWith('.ts') ? args.shift() : 'coalescing.ts';
const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
execFileSync(
  process.execPath,
  [tsc, '-b', '../general-model/tsconfig.lib.json', '../personal-model/tsconfig.lib.json', '../../tools/train-general/tsconfig.lib.json', 'tsconfig.lib.json'],
  { cwd: pkg, stdio: 'inherit' },
);
const { outputText } = ts.transpileModule(readFileSync(join(here, script), 'utf8'), {
  fileName: script,
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
});
mkdirSync(join(here, 'dist'), { recursive: true });
const out = join(here, 'dist', script.replace(/\.ts$/, '.js'));
writeFileSync(out, outputText);
const child = spawn(process.execPath, [out, ...args], { stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 1));
