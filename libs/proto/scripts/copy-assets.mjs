// Copies non-TypeScript runtime files from src/ to dist/ after tsc (tsc only emits .js/.d.ts).
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const libRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ASSETS = ['descriptor-set.binpb'];

mkdirSync(join(libRoot, 'dist'), { recursive: true });
for (const asset of ASSETS) {
  copyFileSync(join(libRoot, 'src', asset), join(libRoot, 'dist', asset));
}
