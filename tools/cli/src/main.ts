#!/usr/bin/env node
// The `aimass` command: see usage.ts. Wiring only; run() in cli.ts does the work.
import { run } from './cli.js';
import { InterruptedError } from './format.js';
import { processIo } from './io.js';

const controller = new AbortController();
// A long evaluation stops between two calls on Ctrl-C and still stops the platform it started;
// a second Ctrl-C ends at once. `aimass dev` installs the runner's own handlers instead.
const onSigint = () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write('aimass: stopping (Ctrl-C again to quit at once)\n');
  controller.abort(new InterruptedError('interrupted (Ctrl-C): stopped before the run finished, nothing written'));
};
if (process.argv[2] === 'eval') process.on('SIGINT', onSigint);

process.exitCode = await run(process.argv.slice(2), processIo(), { eval: { signal: controller.signal } });
