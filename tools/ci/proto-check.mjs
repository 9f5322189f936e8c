// Fails when libs/proto/src is not what `npm run proto:gen` would write from proto/ now.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const scratch = mkdtempSync(join(tmpdir(), 'aimass-proto-check-'));
try {
  execFileSync(process.execPath, [join(root, 'libs/proto/scripts/generate.mjs'), '--out', scratch], { stdio: 'inherit' });
  for (const part of ['gen', 'descriptor-set.binpb']) {
    try {
      execFileSync('diff', ['-r', join(root, 'libs/proto/src', part), join(scratch, part)], { stdio: 'inherit' });
    } catch {
      console.error(`proto-check: libs/proto/src/${part} is stale; run \`npm run proto:gen\` and commit the result.`);
      process.exitCode = 1;
    }
  }
  if (!process.exitCode) console.log('proto-check: generated code is up to date.');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
