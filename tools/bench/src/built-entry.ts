import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of a built JS file of this package (`relativePath` from the src/dist root), for
 * child_process.fork. Built code finds it beside itself; when this module runs from TypeScript
 * sources (vitest), the file under dist/ is used, so tests need the package built first (the
 * vitest global setup does it).
 */
export function builtEntry(relativePath: string): string {
  const self = import.meta.url;
  const root = self.endsWith('.ts') ? new URL('../dist/', self) : new URL('./', self);
  const path = fileURLToPath(new URL(relativePath, root));
  if (!existsSync(path)) throw new Error(`${path} is missing: build @aimass/bench first (npx tsc -b tsconfig.lib.json in tools/bench)`);
  return path;
}
