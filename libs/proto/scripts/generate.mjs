// Regenerates the TypeScript for proto/ and the descriptor set used for server reflection.
//
//   node libs/proto/scripts/generate.mjs            writes libs/proto/src/{gen/,descriptor-set.binpb}
//   node libs/proto/scripts/generate.mjs --out DIR  writes DIR/{gen/,descriptor-set.binpb} instead
//
// Offline: it runs the npm-installed buf and the local ts-proto plugin (see buf.gen.yaml).
// The output only depends on the .proto files and the tool versions, so running it twice gives
// no diff; the "generated code is up to date" test relies on that.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, cpSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const libRoot = resolve(here, '..');
const root = resolve(libRoot, '../..');
// Where buf.gen.yaml puts the plugin output, relative to buf's --output base.
const GEN_OUT = 'libs/proto/src/gen';

function parseArgs(argv) {
  let out = join(libRoot, 'src');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out') {
      const value = argv[++i];
      if (!value) throw new Error('--out needs a directory');
      out = resolve(value);
    } else if (arg.startsWith('--out=')) {
      out = resolve(arg.slice('--out='.length));
    } else {
      throw new Error(`unknown argument: ${arg}`);
    }
  }
  return { out };
}

function bufBinary() {
  const bin = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'buf.cmd' : 'buf');
  if (!existsSync(bin)) throw new Error(`buf not found at ${bin}; run npm install at the repository root`);
  return bin;
}

function buf(args) {
  execFileSync(bufBinary(), args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

const { out } = parseArgs(process.argv.slice(2));
// Generate into a scratch directory first, so a failing run leaves the committed output as it was.
const scratch = mkdtempSync(join(tmpdir(), 'aimass-proto-gen-'));
try {
  buf(['generate', '--template', 'buf.gen.yaml', '--output', scratch]);
  // Source info is kept so reflection clients (grpcurl describe, grpcui) show the comments.
  buf(['build', '--as-file-descriptor-set', '-o', join(scratch, 'descriptor-set.binpb')]);

  const genDir = join(out, 'gen');
  rmSync(genDir, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  cpSync(join(scratch, GEN_OUT), genDir, { recursive: true });
  cpSync(join(scratch, 'descriptor-set.binpb'), join(out, 'descriptor-set.binpb'));
  console.log(`proto: generated ${genDir} and ${join(out, 'descriptor-set.binpb')}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
