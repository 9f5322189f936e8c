import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT_OK, EXIT_USAGE } from '../src/cli.js';

// The built CLI, as `npm run bench` runs it (the global setup builds it).
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function bench(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bench CLI', () => {
  it('--help prints the usage and exits 0', () => {
    const r = bench('--help');
    expect(r.status).toBe(EXIT_OK);
    expect(r.stdout).toContain('usage: npm run bench -- <suite>');
    expect(r.stdout).toContain('--json FILE');
  });

  it('an unknown suite exits 2 naming it, without running anything', () => {
    const r = bench('nosuch');
    expect(r.status).toBe(EXIT_USAGE);
    expect(r.stderr).toContain('unknown suite "nosuch"');
    expect(r.stdout).toBe('');
  });

  it('a missing suite or an unknown option exits 2', () => {
    expect(bench().status).toBe(EXIT_USAGE);
    expect(bench('general', '--frobnicate').status).toBe(EXIT_USAGE);
  });
});
