import { describe, expect, it } from 'vitest';
import { TestProcess } from './index.js';

describe('TestProcess', () => {
  it('waits for the ready line, returns its groups, and reports how the process ended', async () => {
    // The handler goes in before the ready line, so the test's signal cannot arrive first.
    const script = "process.on('SIGTERM', () => { console.log('bye'); process.exit(3); }); setInterval(() => {}, 1000); console.log('listening on ' + 4321);";
    const { process: proc, match } = await TestProcess.start(process.execPath, { args: ['-e', script], ready: /listening on (\d+)/ });
    expect(match[1]).toBe('4321');
    proc.signal('SIGTERM');
    const exit = await proc.waitForExit();
    expect(exit.code).toBe(3);
    expect(proc.output).toContain('bye');
  });

  it('fails with the output when the process dies before it is ready', async () => {
    await expect(
      TestProcess.start(process.execPath, { args: ['-e', "console.error('boom'); process.exit(2)"], ready: /never/ }),
    ).rejects.toThrow(/exited \(2\).*\n.*boom/s);
  });
});
