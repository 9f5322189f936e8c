import { describe, expect, it } from 'vitest';
import { parseRunnerBanner } from './platform.js';

// As tools/runner/src/main.ts prints it, with log lines around.
const BANNER = [
  'AI Mass is running in one process (data in /tmp/x)',
  '  runner         127.0.0.1:40001  (grpc.health.v1 for every service, server reflection)',
  '  general-model  127.0.0.1:40002',
  '  personal-model 127.0.0.1:40003',
  '  fusion         127.0.0.1:40004',
  'Ctrl-C (SIGINT) or SIGTERM drains and stops.',
];

describe('parseRunnerBanner', () => {
  it('reads the runner and service addresses once the banner is complete', () => {
    expect(parseRunnerBanner(BANNER.slice(0, 4))).toBeUndefined();
    const parsed = parseRunnerBanner(['training…', ...BANNER]);
    expect(parsed?.runnerAddress).toBe('127.0.0.1:40001');
    expect([...parsed!.services]).toEqual([
      ['general-model', '127.0.0.1:40002'],
      ['personal-model', '127.0.0.1:40003'],
      ['fusion', '127.0.0.1:40004'],
    ]);
  });
});
