// Fails when the protobuf contracts change incompatibly (buf breaking, FILE rules) relative to
// the branch they will merge into.
//
//   node tools/ci/buf-breaking.mjs              against the merge base with origin/main (or main)
//   node tools/ci/buf-breaking.mjs --against R  against git ref R (branch, tag or commit)
//   BUF_BREAKING_AGAINST=<buf input>            any buf input, e.g. '.git#branch=release,subdir=proto'
//
// On main itself (CI runs on a clone of main, where the merge base is HEAD and a comparison would
// be empty) it walks main's history instead: every commit among the last 50 that changed proto/
// must be compatible with its parent. A deliberate break says so in its message with
// [breaking-proto], which keeps the exception visible in the log.
//
// Works offline: buf reads the local .git. When the baseline has no .proto files yet (the first
// commit that adds them), there is nothing to break and it exits 0 after saying so.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MODULE_DIR = 'proto';

function git(args) {
  const result = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function parseArgs(argv) {
  let against;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--against') against = argv[++i];
    else if (argv[i]?.startsWith('--against=')) against = argv[i].slice('--against='.length);
    else throw new Error(`unknown argument: ${argv[i]}`);
  }
  return { against };
}

/** The commit to compare with: the merge base with the target branch, so only this branch's changes count. */
function baselineCommit(requested) {
  const candidates = requested ? [requested] : ['origin/main', 'main'];
  for (const ref of candidates) {
    const commit = git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
    if (!commit) continue;
    // A shallow CI clone may lack the history for a merge base; the ref itself is then the best baseline.
    const base = git(['merge-base', 'HEAD', commit]) ?? commit;
    return { ref, commit: base };
  }
  return undefined;
}

function main() {
  const buf = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'buf.cmd' : 'buf');
  if (!existsSync(buf)) throw new Error(`buf not found at ${buf}; run npm install`);

  const { against: requested } = parseArgs(process.argv.slice(2));
  let against = process.env.BUF_BREAKING_AGAINST;
  if (!against) {
    if (!git(['rev-parse', '--git-dir'])) {
      console.log('buf-breaking: not a git repository; skipping.');
      return 0;
    }
    const baseline = baselineCommit(requested);
    if (baseline && !requested && baseline.commit === git(['rev-parse', 'HEAD'])) return checkHistory(buf);
    if (!baseline) {
      console.log(`buf-breaking: no baseline ref (${requested ?? 'origin/main, main'}) found; skipping.`);
      return 0;
    }
    const protoFiles = (git(['ls-tree', '-r', '--name-only', baseline.commit, '--', `${MODULE_DIR}/`]) ?? '')
      .split('\n')
      .filter((f) => f.endsWith('.proto'));
    if (protoFiles.length === 0) {
      console.log(`buf-breaking: baseline ${baseline.ref} (${baseline.commit.slice(0, 12)}) has no ${MODULE_DIR}/*.proto yet; nothing to break, skipping.`);
      return 0;
    }
    against = `.git#ref=${baseline.commit},subdir=${MODULE_DIR}`;
    console.log(`buf-breaking: checking ${MODULE_DIR}/ against ${baseline.ref} (${baseline.commit.slice(0, 12)}, ${protoFiles.length} .proto files)`);
  } else {
    console.log(`buf-breaking: checking ${MODULE_DIR}/ against ${against}`);
  }

  try {
    execFileSync(buf, ['breaking', MODULE_DIR, '--against', against], { cwd: root, stdio: 'inherit' });
  } catch (error) {
    // buf has printed the violations; its exit status is the result.
    return typeof error.status === 'number' ? error.status : 1;
  }
  console.log('buf-breaking: no breaking changes.');
  return 0;
}

function hasProto(commit) {
  return (git(['ls-tree', '-r', '--name-only', commit, '--', `${MODULE_DIR}/`]) ?? '').split('\n').some((f) => f.endsWith('.proto'));
}

function checkHistory(buf) {
  const commits = (git(['log', '--first-parent', '-n', '50', '--format=%H %s', '--', `${MODULE_DIR}/`]) ?? '')
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ sha: line.slice(0, 40), subject: line.slice(41) }));
  let checked = 0;
  for (const { sha, subject } of commits) {
    const parent = git(['rev-parse', '--verify', '--quiet', `${sha}^`]);
    if (!parent || !hasProto(parent)) continue;
    if (subject.includes('[breaking-proto]')) {
      console.log(`buf-breaking: ${sha.slice(0, 12)} is marked [breaking-proto]; not checked: ${subject}`);
      continue;
    }
    const result = spawnSync(
      buf,
      ['breaking', `.git#ref=${sha},subdir=${MODULE_DIR}`, '--against', `.git#ref=${parent},subdir=${MODULE_DIR}`],
      { cwd: root, stdio: 'inherit' },
    );
    if (result.status !== 0) {
      console.log(`buf-breaking: ${sha.slice(0, 12)} (${subject}) breaks the contracts of its parent.`);
      return result.status ?? 1;
    }
    checked++;
  }
  console.log(`buf-breaking: on main; ${checked} commit(s) that changed ${MODULE_DIR}/ are each compatible with their parent.`);
  return 0;
}

process.exitCode = main();
