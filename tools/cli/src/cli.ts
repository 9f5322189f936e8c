import { parseCommand, UsageError, type ParsedCommand } from './args.js';
import { evalPersonalizationCommand, type EvalDependencies } from './commands/eval.js';
import { modelsRefitCommand, modelsStateCommand, type ModelsDependencies } from './commands/models.js';
import { feedbackCommand, predictCommand } from './commands/predict.js';
import { adminCommand, parseAdminCommand, type AdminDependencies } from './commands/tenants.js';
import {
  consentHistoryCommand,
  consentSetCommand,
  consentShowCommand,
  eraseCommand,
  exportCommand,
  receiptCommand,
  type PrivacyDependencies,
} from './commands/privacy.js';
import { EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { errorLine, exitCodeOf, type ServiceKind } from './format.js';
import type { CliIo } from './io.js';
import { runDev } from './platform.js';

export interface RunDependencies {
  eval?: Partial<EvalDependencies> | undefined;
  models?: Partial<ModelsDependencies> | undefined;
  privacy?: Partial<PrivacyDependencies> | undefined;
  admin?: Partial<AdminDependencies> | undefined;
  /** `aimass dev`; the runner's entry by default. */
  dev?: ((dataDir: string | undefined) => Promise<void>) | undefined;
}

/** The command a usage text is for: "Usage: aimass eval personalization [options]" → "aimass eval personalization". */
function commandOf(usage: string): string {
  return /^Usage: (aimass(?: [a-z]+)*)/.exec(usage)?.[1] ?? 'aimass';
}

/** The command as the user typed it, for the error prefix. */
function commandName(parsed: ParsedCommand | undefined, argv: readonly string[]): string {
  if (parsed?.kind === 'eval-personalization') return 'eval personalization';
  if (parsed?.kind === 'models-refit') return 'models refit';
  if (parsed?.kind === 'models-state') return 'models state';
  if (parsed?.kind === 'consent-set' || parsed?.kind === 'consent-show' || parsed?.kind === 'consent-history') return `consent ${argv[1] ?? ''}`;
  return argv[0] ?? '';
}

/** The address a failed command talked to, and what serves it, for the error's hint. */
function contacted(parsed: ParsedCommand | undefined): { address: string | undefined; service: ServiceKind } {
  switch (parsed?.kind) {
    case 'predict':
    case 'feedback':
      return { address: parsed.options.connection.address, service: 'platform' };
    case 'models-refit':
    case 'models-state':
      return { address: parsed.options.connection.address, service: 'updater' };
    case 'consent-set':
    case 'consent-show':
    case 'consent-history':
    case 'erase':
    case 'receipt':
    case 'export':
      return { address: parsed.options.connection.address, service: 'privacy' };
    case 'eval-personalization':
      // The updater's failures are reported by the evaluation itself, naming its address.
      return { address: parsed.options.address, service: 'platform' };
    default:
      return { address: undefined, service: 'platform' };
  }
}

/**
 * Runs one `aimass` command and returns its exit code. Results go to stdout, progress and the
 * one-line error to stderr.
 */
export async function run(argv: readonly string[], io: CliIo, deps: RunDependencies = {}): Promise<number> {
  let parsed: ParsedCommand | undefined;
  // `tenants` and `keys` parse and run on their own (fusion's tenant admin API).
  if (argv[0] === 'tenants' || argv[0] === 'keys') return runAdmin(argv[0], argv, io, deps);
  try {
    parsed = parseCommand(argv, io.env);
    switch (parsed.kind) {
      case 'help':
        io.stdout.write(`${parsed.text}\n`);
        return EXIT_OK;
      case 'dev':
        await (deps.dev ?? ((dataDir) => runDev({ dataDir, env: process.env })))(parsed.dataDir);
        return EXIT_OK;
      case 'predict':
        return await predictCommand(parsed.options, io);
      case 'feedback':
        return await feedbackCommand(parsed.options, io);
      case 'eval-personalization':
        return await evalPersonalizationCommand(parsed.options, io, deps.eval);
      case 'models-refit':
        return await modelsRefitCommand(parsed.options, io, deps.models);
      case 'models-state':
        return await modelsStateCommand(parsed.options, io, deps.models);
      case 'consent-set':
        return await consentSetCommand(parsed.options, io, deps.privacy);
      case 'consent-show':
        return await consentShowCommand(parsed.options, io, deps.privacy);
      case 'consent-history':
        return await consentHistoryCommand(parsed.options, io, deps.privacy);
      case 'erase':
        return await eraseCommand(parsed.options, io, deps.privacy);
      case 'receipt':
        return await receiptCommand(parsed.options, io, deps.privacy);
      case 'export':
        return await exportCommand(parsed.options, io, deps.privacy);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const command = commandOf(err.usage);
      io.stderr.write(`${command}: ${err.message} (see \`${command} --help\`)\n`);
      return EXIT_USAGE;
    }
    const { address, service } = contacted(parsed);
    io.stderr.write(`${errorLine(commandName(parsed, argv), err, address, service)}\n`);
    return exitCodeOf(err);
  }
}

async function runAdmin(group: 'tenants' | 'keys', argv: readonly string[], io: CliIo, deps: RunDependencies): Promise<number> {
  let address: string | undefined;
  try {
    const parsed = parseAdminCommand(group, argv.slice(1), io.env);
    if (parsed.kind === 'help') {
      io.stdout.write(`${parsed.text}\n`);
      return EXIT_OK;
    }
    address = parsed.connection.address;
    return await adminCommand(parsed, io, deps.admin);
  } catch (err) {
    if (err instanceof UsageError) {
      const command = commandOf(err.usage);
      io.stderr.write(`${command}: ${err.message} (see \`${command} --help\`)\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`${errorLine(`${group} ${argv[1] ?? ''}`.trim(), err, address, 'platform')}\n`);
    return exitCodeOf(err);
  }
}
