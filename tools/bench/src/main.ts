#!/usr/bin/env node
// npm run bench -- <suite> [--json FILE] [--quick]: see USAGE in cli.ts.
import { join, resolve } from 'node:path';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, parseCli, USAGE } from './cli.js';
import { LoadGenerator } from './load/load-generator.js';
import { Progress } from './progress.js';
import { formatTable } from './report/table.js';
import { writeReport } from './report/write.js';
import { runGeneralSuite } from './suites/general.js';

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseCli(argv);
  if (parsed.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(`bench: ${parsed.message}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const options = parsed.options;
  // npm runs scripts from the workspace root; INIT_CWD is where the user typed the command.
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const resultsDir = resolve(cwd, 'bench-results');
  const jsonPath = options.json === undefined ? undefined : resolve(cwd, options.json);
  const progress = new Progress();
  const load = await LoadGenerator.start();
  try {
    const records = await runGeneralSuite({
      models: options.models,
      quick: options.quick,
      heavyBlocks: options.heavyBlocks,
      concurrency: options.concurrency,
      durationS: options.durationS,
      workers: options.workers,
      intraOp: options.intraOp,
      connections: options.connections,
      maxBatch: options.maxBatch,
      queueDelayMs: options.queueDelayMs,
      cacheDir: join(resultsDir, 'cache'),
      progress,
      load,
    });
    process.stdout.write(`\n${formatTable(records)}\n\n`);
    const title = `general-model benchmark${options.quick ? ' (--quick)' : ''}: ${new Date().toISOString().slice(0, 16)}Z`;
    const written = await writeReport(jsonPath ?? join(resultsDir, `${options.suite}.json`), records, title, { json: jsonPath !== undefined });
    if (written.json !== undefined) process.stdout.write(`figures: ${written.json}\n`);
    process.stdout.write(`plot: ${written.png} (and ${written.svg})\n`);
    return EXIT_OK;
  } finally {
    await load.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = EXIT_FAILED;
  },
);
