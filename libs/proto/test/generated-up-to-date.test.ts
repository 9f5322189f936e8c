// The committed generated code and descriptor set must be what `npm run proto:gen` produces
// from proto/ today; a .proto edit without regenerating fails here.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const LIB = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(LIB, 'src');
const BUF = fileURLToPath(new URL('../../../node_modules/.bin/buf', import.meta.url));

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe('generated code', () => {
  const out = mkdtempSync(join(tmpdir(), 'aimass-proto-check-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.skipIf(!existsSync(BUF))('matches a fresh generation from proto/', { timeout: 60_000 }, async () => {
    await promisify(execFile)(process.execPath, [join(LIB, 'scripts', 'generate.mjs'), '--out', out]);

    const fresh = listFiles(join(out, 'gen'));
    expect(fresh.length).toBeGreaterThan(0);
    expect(listFiles(join(SRC, 'gen'))).toEqual(fresh);
    for (const file of fresh) {
      const committed = readFileSync(join(SRC, 'gen', file), 'utf8');
      expect(committed, `src/gen/${file} is stale: run npm run proto:gen`).toBe(readFileSync(join(out, 'gen', file), 'utf8'));
    }
    const descriptorUpToDate = readFileSync(join(SRC, 'descriptor-set.binpb')).equals(readFileSync(join(out, 'descriptor-set.binpb')));
    expect(descriptorUpToDate, 'src/descriptor-set.binpb is stale: run npm run proto:gen').toBe(true);
  });
});
