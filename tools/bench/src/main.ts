#!/usr/bin/env node
// npm run bench -- <suite> [--json FILE] [--quick]: see USAGE in cli.ts.
import { join, resolve } from 'node:path';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, parseCli, USAGE, type CliOptions } from './cli.js';
import { LoadGenerator } from './load/load-generator.js';
import { Progress } from './progress.js';
import { formatPersonalTable, renderPersonalSvg } from './report/personal-report.js';
import { formatPrivacyTable, renderPrivacySvg } from './report/privacy-report.js';
import { formatTenancyTable, renderTenancySvg } from './report/tenancy-report.js';
import { formatTable } from './report/table.js';
import { formatUpdatesTable, renderUpdatesSvg } from './report/updates-report.js';
import { writeFigures, writeReport, type WrittenReport } from './report/write.js';
import { runGeneralSuite } from './suites/general.js';
import { runPersonalSuite } from './suites/personal.js';
import { runPrivacySuite } from './suites/privacy.js';
import { runTenancySuite } from './suites/tenancy.js';
import { runUpdatesSuite } from './suites/updates.js';

interface RunContext {
  readonly cacheDir: string;
  readonly jsonPath: string | undefined;
  readonly defaultPath: string;
  readonly progress: Progress;
  /** The load process, for the suites that drive load from it. */
  readonly load: () => Promise<LoadGenerator>;
}

function stamp(quick: boolean): string {
  return `${quick ? ' (--quick)' : ''}: ${new Date().toISOString().slice(0, 16)}Z`;
}

async function runSuite(options: CliOptions, ctx: RunContext): Promise<WrittenReport> {
  const target = ctx.jsonPath ?? ctx.defaultPath;
  const json = { json: ctx.jsonPath !== undefined };
  const { cacheDir, progress } = ctx;
  if (options.suite === 'updates') {
    const record = await runUpdatesSuite({ ...options, cacheDir, progress });
    process.stdout.write(`\n${formatUpdatesTable(record)}\n\n`);
    return writeFigures(target, record, renderUpdatesSvg(record, `incremental updates benchmark${stamp(options.quick)}`), json);
  }
  if (options.suite === 'privacy') {
    const record = await runPrivacySuite({ ...options, cacheDir, progress });
    process.stdout.write(`\n${formatPrivacyTable(record)}\n\n`);
    return writeFigures(target, record, renderPrivacySvg(record, `privacy benchmark${stamp(options.quick)}`), json);
  }
  if (options.suite === 'tenancy') {
    const record = await runTenancySuite({ ...options, cacheDir, progress, load: ctx.load });
    process.stdout.write(`\n${formatTenancyTable(record)}\n\n`);
    return writeFigures(target, record, renderTenancySvg(record, `noisy-neighbour benchmark${stamp(options.quick)}`), json);
  }
  const load = await ctx.load();
  if (options.suite === 'personal') {
    const record = await runPersonalSuite({ ...options, cacheDir, progress, load });
    process.stdout.write(`\n${formatPersonalTable(record)}\n\n`);
    return writeFigures(target, record, renderPersonalSvg(record, `personal-model benchmark${stamp(options.quick)}`), json);
  }
  const records = await runGeneralSuite({ ...options, cacheDir, progress, load });
  process.stdout.write(`\n${formatTable(records)}\n\n`);
  return writeReport(target, records, `general-model benchmark${stamp(options.quick)}`, json);
}

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
  // The updates and privacy suites make their calls through the SDK in this process: no load process for them.
  let loadProcess: Promise<LoadGenerator> | undefined;
  const load = () => (loadProcess ??= LoadGenerator.start());
  try {
    const written = await runSuite(options, { cacheDir: join(resultsDir, 'cache'), jsonPath, defaultPath: join(resultsDir, `${options.suite}.json`), progress, load });
    if (written.json !== undefined) process.stdout.write(`figures: ${written.json}\n`);
    process.stdout.write(`plot: ${written.png} (and ${written.svg})\n`);
    return EXIT_OK;
  } finally {
    await loadProcess?.then((l) => l.close(), () => undefined);
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
