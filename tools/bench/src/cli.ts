import { parseArgs } from 'node:util';
import type { GeneralSuiteOptions } from './suites/general.js';

export const SUITES = ['general'] as const;
export type SuiteName = (typeof SUITES)[number];

export const EXIT_OK = 0;
/** The run itself failed (a contender would not start, a measurement errored). */
export const EXIT_FAILED = 1;
/** Bad command line. */
export const EXIT_USAGE = 2;

export const USAGE = `usage: npm run bench -- <suite> [options]

suites:
  general            the general-model service against its limits (echo transport, raw onnxruntime)
                     and a naive grpc-js server, on the default, medium and heavy models

options:
  --json FILE        also write the figures as JSON to FILE (plot beside it as .svg and .png)
  --quick            short measurements (~1 s per point): a smoke run, figures are noisy
  --models LIST      comma-separated subset of default,medium,heavy (default: all three)
  --heavy-blocks N   feed-forward blocks of the heavy model (default 1; 4.8 GFLOP/row at 4)
  --concurrency LIST concurrency sweep (default 1,4,16,64; the largest is the headline)
  --duration S       seconds measured per point (default 8, --quick 1)
  --workers N        service worker threads (default 2, the service's default on 2 cores)
  --intra-op N       onnxruntime intra-op threads per service worker (default 1, the service's default)
  --connections N    HTTP/2 connections the load clients share at most (default 4)
  --max-batch N      the service's max_batch_size for every model (default per model: 64, 64, 8)
  --queue-delay-ms X the service's max queue delay for every model (default per model)
  --help             this text

The plot is written to bench-results/<suite>.png unless --json names another place.
Exit codes: 0 done (goals are reported, not enforced), 1 the run failed, 2 bad usage.`;

/** The suite's own options (see GeneralSuiteOptions for what each means), plus what the CLI adds. */
export interface CliOptions extends Omit<GeneralSuiteOptions, 'cacheDir' | 'progress' | 'load'> {
  readonly suite: SuiteName;
  readonly json: string | undefined;
}

export type ParsedCli = { readonly kind: 'help' } | { readonly kind: 'run'; readonly options: CliOptions } | { readonly kind: 'error'; readonly message: string };

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}

export function parseCli(argv: readonly string[]): ParsedCli {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'string' },
        quick: { type: 'boolean', default: false },
        models: { type: 'string' },
        'heavy-blocks': { type: 'string' },
        concurrency: { type: 'string' },
        duration: { type: 'string' },
        workers: { type: 'string' },
        'intra-op': { type: 'string' },
        connections: { type: 'string' },
        'max-batch': { type: 'string' },
        'queue-delay-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) return { kind: 'help' };
    if (positionals.length !== 1) return { kind: 'error', message: positionals.length === 0 ? 'missing suite name' : `one suite at a time, got ${positionals.join(' ')}` };
    const suite = positionals[0] as string;
    if (!(SUITES as readonly string[]).includes(suite)) return { kind: 'error', message: `unknown suite "${suite}" (known: ${SUITES.join(', ')})` };
    const models = (values.models ?? 'default,medium,heavy').split(',').map((m) => m.trim());
    for (const m of models) if (!['default', 'medium', 'heavy'].includes(m)) return { kind: 'error', message: `unknown model "${m}" (known: default, medium, heavy)` };
    const concurrency = (values.concurrency ?? '1,4,16,64').split(',').map((c) => positiveInt('--concurrency', c.trim()));
    const duration = values.duration === undefined ? undefined : Number(values.duration);
    const queueDelay = values['queue-delay-ms'] === undefined ? undefined : Number(values['queue-delay-ms']);
    if (queueDelay !== undefined && !(queueDelay >= 0)) return { kind: 'error', message: `--queue-delay-ms must be a number >= 0, got "${values['queue-delay-ms']}"` };
    if (duration !== undefined && !(duration > 0)) return { kind: 'error', message: `--duration must be a positive number of seconds, got "${values.duration}"` };
    return {
      kind: 'run',
      options: {
        suite: suite as SuiteName,
        json: values.json,
        quick: values.quick,
        models: models as CliOptions['models'],
        heavyBlocks: values['heavy-blocks'] === undefined ? 1 : positiveInt('--heavy-blocks', values['heavy-blocks']),
        concurrency: [...new Set(concurrency)].sort((a, b) => a - b),
        durationS: duration,
        workers: values.workers === undefined ? 2 : positiveInt('--workers', values.workers),
        intraOp: values['intra-op'] === undefined ? 1 : positiveInt('--intra-op', values['intra-op']),
        connections: values.connections === undefined ? 4 : positiveInt('--connections', values.connections),
        maxBatch: values['max-batch'] === undefined ? undefined : positiveInt('--max-batch', values['max-batch']),
        queueDelayMs: queueDelay,
      },
    };
  } catch (error) {
    return { kind: 'error', message: error instanceof Error ? error.message : String(error) };
  }
}
