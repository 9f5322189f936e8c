import { chmod, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ErasureTimeoutError, PrivacyClient, type ErasureReceipt, type SetConsentResult } from '@aimass/sdk';
import type { ConnectionOptions, ConsentHistoryCommand, ConsentSetCommand, ConsentShowCommand, EraseCommand, ExportCommand, ReceiptCommand } from '../args.js';
import { clock } from '../eval/progress.js';
import { EXIT_OK } from '../exit-codes.js';
import { OutputFileError } from '../format.js';
import type { CliIo } from '../io.js';
import {
  formatConsentDecisions,
  formatConsentHistory,
  formatConsentResults,
  formatErasureProgress,
  formatEraseResult,
  formatReceipt,
  privacyJson,
} from '../privacy-format.js';

/** What the privacy commands call: PrivacyClient, or a stand-in in tests. */
export type PrivacyApi = Pick<PrivacyClient, 'setConsent' | 'grant' | 'getConsent' | 'consentHistory' | 'erase' | 'erasureReceipt' | 'waitForErasure' | 'export' | 'close'>;

export interface PrivacyDependencies {
  connect: (c: ConnectionOptions) => PrivacyApi;
  /** Time between two reads of the receipt with `erase --wait`. */
  pollMs: number;
}

const DEFAULTS: PrivacyDependencies = {
  connect: (c) => new PrivacyClient({ address: c.address, tenant: c.tenant, apiKey: c.apiKey, defaultDeadlineMs: c.deadlineMs }),
  pollMs: 500,
};

async function withClient<T>(connection: ConnectionOptions, deps: Partial<PrivacyDependencies>, use: (client: PrivacyApi) => Promise<T>): Promise<T> {
  const client = (deps.connect ?? DEFAULTS.connect)(connection);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/** `consent grant|deny|withdraw`: one decision per purpose, in the order given. */
export async function consentSetCommand(options: ConsentSetCommand, io: CliIo, deps: Partial<PrivacyDependencies> = {}): Promise<number> {
  return withClient(options.connection, deps, async (client) => {
    const { user: userId, state, policyVersion, source } = options;
    let results: SetConsentResult[];
    if (state === 'granted') {
      results = await client.grant(userId, options.purposes, { policyVersion, source });
    } else {
      results = [];
      for (const purpose of options.purposes) results.push(await client.setConsent({ userId, purpose, state, policyVersion, source }));
    }
    io.stdout.write(`${options.json ? privacyJson(results) : formatConsentResults(results)}\n`);
    return EXIT_OK;
  });
}

export async function consentShowCommand(options: ConsentShowCommand, io: CliIo, deps: Partial<PrivacyDependencies> = {}): Promise<number> {
  return withClient(options.connection, deps, async (client) => {
    const decisions = await client.getConsent(options.user, options.purposes);
    io.stdout.write(`${options.json ? privacyJson(decisions) : formatConsentDecisions(decisions)}\n`);
    return EXIT_OK;
  });
}

export async function consentHistoryCommand(options: ConsentHistoryCommand, io: CliIo, deps: Partial<PrivacyDependencies> = {}): Promise<number> {
  return withClient(options.connection, deps, async (client) => {
    const history = await client.consentHistory(options.user, { purpose: options.purpose });
    io.stdout.write(`${options.json ? privacyJson(history) : formatConsentHistory(history)}\n`);
    return EXIT_OK;
  });
}

/** `erase`: requests the erasure; with --wait follows it to the receipt (progress on stderr). */
export async function eraseCommand(options: EraseCommand, io: CliIo, deps: Partial<PrivacyDependencies> = {}): Promise<number> {
  const pollMs = deps.pollMs ?? DEFAULTS.pollMs;
  return withClient(options.connection, deps, async (client) => {
    const erased = await client.erase(options.user, { reason: options.reason });
    if (options.waitS === undefined) {
      io.stdout.write(`${options.json ? privacyJson(erased) : formatEraseResult(erased)}\n`);
      return EXIT_OK;
    }
    // The id goes out first: whatever happens while waiting, the caller can follow it up.
    io.stderr.write(`erasure ${erased.erasureId} requested${erased.duplicate ? ' (the user already had this erasure)' : ''}\n`);
    const started = performance.now();
    const progress = (r: ErasureReceipt) => io.stderr.write(`[erase ${clock(performance.now() - started)}] ${formatErasureProgress(r)}\n`);
    let receipt: ErasureReceipt;
    try {
      receipt = await client.waitForErasure(erased.erasureId, { timeoutMs: options.waitS * 1000, pollMs, onProgress: progress });
    } catch (err) {
      // The receipt as it stood is the most useful thing to show before the one-line error.
      if (err instanceof ErasureTimeoutError) io.stdout.write(`${options.json ? privacyJson(err.receipt) : formatReceipt(err.receipt)}\n`);
      throw err;
    }
    io.stdout.write(`${options.json ? privacyJson(receipt) : formatReceipt(receipt)}\n`);
    return EXIT_OK;
  });
}

export async function receiptCommand(options: ReceiptCommand, io: CliIo, deps: Partial<PrivacyDependencies> = {}): Promise<number> {
  return withClient(options.connection, deps, async (client) => {
    const receipt = await client.erasureReceipt(options.erasureId);
    io.stdout.write(`${options.json ? privacyJson(receipt) : formatReceipt(receipt)}\n`);
    return EXIT_OK;
  });
}

/** `export`: the document as JSON on stdout, or in a file only its owner can read (it is personal data). */
export async function exportCommand(options: ExportCommand, io: CliIo, deps: Partial<PrivacyDependencies> = {}): Promise<number> {
  return withClient(options.connection, deps, async (client) => {
    const { document, generatedAt } = await client.export(options.user);
    const text = `${JSON.stringify(document, null, 2)}\n`;
    if (options.out === undefined) {
      io.stdout.write(text);
      return EXIT_OK;
    }
    const path = resolve(io.cwd, options.out);
    try {
      await writeFile(path, text, { mode: 0o600 });
      // mode applies to a new file only; an existing one is narrowed too.
      await chmod(path, 0o600);
    } catch (err) {
      throw new OutputFileError(`cannot write the export to ${path}: ${(err as Error).message}`);
    }
    const at = generatedAt === undefined ? '' : `, generated ${generatedAt.toISOString()}`;
    io.stdout.write(`export written to ${path} (${Buffer.byteLength(text)} bytes${at})\n`);
    return EXIT_OK;
  });
}
