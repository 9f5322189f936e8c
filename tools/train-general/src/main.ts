#!/usr/bin/env node
import { USAGE, UsageError, parseCli } from './cli.js';
import { progressPrinter } from './progress.js';
import { trainGeneral } from './train.js';

async function main(argv: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { json, ...trainOptions } = options;
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort(new Error('interrupted')));
  try {
    const result = await trainGeneral({
      ...trainOptions,
      signal: controller.signal,
      onProgress: json ? undefined : progressPrinter(process.stderr),
    });
    const { metadata } = result;
    const heldOut = metadata.metrics.heldOut;
    if (json) {
      process.stdout.write(`${JSON.stringify({ path: result.path, ...metadata }, null, 2)}\n`);
    } else {
      const groups = Object.entries(heldOut.byGroup)
        .map(([g, m]) => `${g} ${m.errors}/${m.count}`)
        .join(', ');
      process.stdout.write(
        [
          `model ${result.model} version ${result.version}: ${result.path}`,
          `held-out: accuracy ${heldOut.accuracy.toFixed(4)}, AUC ${heldOut.auc.toFixed(4)} on ${heldOut.count} mails (train ${metadata.data.train})`,
          `errors by group: ${groups}`,
          `data ${metadata.data.hash}, seed ${metadata.training.seed}, ${(metadata.training.totalMs / 1000).toFixed(1)} s`,
        ].join('\n') + '\n',
      );
    }
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
