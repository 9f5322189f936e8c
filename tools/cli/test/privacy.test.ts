import { readFile, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNatsBus, startErasureParticipant, type ErasureParticipant, type NatsEventBus } from '@aimass/events';
import { Pseudonymizer, createLogger } from '@aimass/platform';
import { startPrivacy, type RunningPrivacy } from '@aimass/privacy';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, freePort, tempDir, type TempDir } from '@aimass/testing';
import { run } from '../src/cli.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE } from '../src/exit-codes.js';
import type { CliIo } from '../src/io.js';

// `aimass consent|erase|receipt|export` end to end: arguments → SDK → the real privacy service
// (on a real nats-server and SQLite) → output and exit codes. One erasure participant of the
// test's own confirms after a short delay, or fails for the users the test holds back.
const SECRET = 'cli-privacy-test-secret-cli-privacy-test!';
const pseudonymizer = new Pseudonymizer({ rootSecret: SECRET });
const held = new Set<string>();

let dir: TempDir;
let nats: NatsServer;
let store: DocumentStore;
let privacy: RunningPrivacy;
let participant: ErasureParticipant;
const buses: NatsEventBus[] = [];

interface Result {
  code: number;
  out: string;
  err: string;
}

async function aimass(...argv: string[]): Promise<Result> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { AIMASS_PRIVACY_ADDRESS: privacy.address, AIMASS_TENANT: 'acme', AIMASS_POLICY_VERSION: 'policy-2025-01' },
    cwd: dir.path,
    readStdin: async () => '',
  };
  const code = await run(argv, io, { privacy: { pollMs: 50 } });
  return { code, out, err };
}

async function bus(name: string): Promise<NatsEventBus> {
  const b = await connectNatsBus({ servers: nats.url, name, pullExpiresMs: 1_000 });
  buses.push(b);
  return b;
}

beforeAll(async () => {
  dir = await tempDir('cli-privacy-');
  nats = await NatsServer.start();
  store = await openSqliteStore({ path: join(dir.path, 'privacy.sqlite') });
  privacy = await startPrivacy(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
      pseudonym: { secret: SECRET },
      dataKeys: { kekSource: 'config', kekSecret: { default: randomBytes(32).toString('base64') } },
      privacy: { erasure: { services: ['privacy', 'cli-test'], sweepIntervalMs: 0, graceMs: 0 }, outbox: { sweepIntervalMs: 0 } },
    },
    createLogger({ service: 'privacy', level: 'warn' }),
    { store, bus: await bus('privacy') },
  );
  participant = await startErasureParticipant({
    bus: await bus('cli-test'),
    service: 'cli-test',
    consumer: { maxDeliver: 2, backoffMs: [50], ackWaitMs: 5_000 },
    erase: async (request) => {
      if (held.has(request.userPseudonym)) throw new Error('held back by the test');
      await new Promise((resolve) => setTimeout(resolve, 200));
      return { itemsDeleted: 2 };
    },
  });
});

afterAll(async () => {
  await participant?.close();
  await privacy?.stop();
  for (const b of buses) await b.close().catch(() => undefined);
  await store?.close();
  await nats?.dispose();
  await dir?.remove();
});

describe('aimass consent', () => {
  it('grants, withdraws, shows and lists the verified history', async () => {
    const grant = await aimass('consent', 'grant', '--user', 'alice', '--purpose', 'personalization,training', '--source', 'web-settings');
    expect(grant).toMatchObject({ code: EXIT_OK, err: '' });
    const lines = grant.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^purpose +state +record +policy +source +recorded +outcome$/);
    expect(lines[1]).toMatch(/^personalization +granted +1 +policy-2025-01 +web-settings +\d{4}-\d\d-\d\dT\S+Z +changed$/);
    expect(lines[2]).toMatch(/^training +granted +2 +policy-2025-01 +web-settings +\S+ +changed$/);

    const withdraw = await aimass('consent', 'withdraw', '--user', 'alice', '--purpose', 'training', '--policy-version', 'policy-2025-02', '--json');
    expect(withdraw.code).toBe(EXIT_OK);
    expect(JSON.parse(withdraw.out)).toMatchObject([{ changed: true, duplicate: false, record: { sequence: 3, purpose: 'training', state: 'withdrawn', policyVersion: 'policy-2025-02', source: 'aimass-cli' } }]);

    const show = await aimass('consent', 'show', '--user', 'alice');
    expect(show.code).toBe(EXIT_OK);
    expect(show.out).toMatch(/^purpose +state +since +policy +source +record\npersonalization +granted +\S+ +policy-2025-01 +web-settings +1\ntraining +withdrawn +\S+ +policy-2025-02 +aimass-cli +3\n$/);
    const nobody = await aimass('consent', 'show', '--user', 'nobody', '--purpose', 'training', '--json');
    expect(JSON.parse(nobody.out)).toEqual([{ purpose: 'training', state: 'denied', isDefault: true }]);

    const history = await aimass('consent', 'history', '--user', 'alice');
    expect(history.code).toBe(EXIT_OK);
    expect(history.out).toMatch(/\n1 +personalization +granted .* yes\n2 +training +granted .* yes\n3 +training +withdrawn .* yes\n\nchain verified: yes \(3 records\)\n$/);
    const training = JSON.parse((await aimass('consent', 'history', '--user', 'alice', '--purpose', 'training', '--json')).out) as { records: { sequence: number }[]; chainVerified: boolean };
    expect(training.records.map((r) => r.sequence)).toEqual([2, 3]);
    expect(training.chainVerified).toBe(true);
  });

  it('exits 1 with the server message when the service refuses, 2 on bad usage, 69 with a hint when privacy is unreachable', async () => {
    const refused = await aimass('consent', 'grant', '--user', 'u'.repeat(300), '--purpose', 'training');
    expect(refused.code).toBe(EXIT_FAILURE);
    expect(refused.err).toMatch(/^aimass consent grant: INVALID_ARGUMENT: .* \(field user_id\)\n$/);

    const usage = await aimass('consent', 'grant', '--user', 'u', '--purpose', 'marketing');
    expect(usage.code).toBe(EXIT_USAGE);
    expect(usage.err).toBe('aimass consent grant: --purpose must name purposes among personalization, training (comma-separated), got "marketing" (see `aimass consent grant --help`)\n');

    const address = `127.0.0.1:${await freePort()}`;
    const down = await aimass('consent', 'show', '--user', 'u', '--address', address, '--deadline-ms', '500');
    expect(down.code).toBe(EXIT_UNAVAILABLE);
    expect(down.err).toContain(`— is the privacy service running at ${address}? In the one-process mode \`aimass dev\` starts it; else pass --address or set AIMASS_PRIVACY_ADDRESS`);
  });
});

describe('aimass erase and receipt', () => {
  it('prints the erasure id; --wait shows progress and the completed receipt; receipt reads it again', async () => {
    await aimass('consent', 'grant', '--user', 'bob', '--purpose', 'training');
    const erased = await aimass('erase', '--user', 'bob', '--reason', 'gdpr-art17');
    expect(erased.code).toBe(EXIT_OK);
    const id = /^erasure +(\S+)\n/.exec(erased.out)?.[1];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(erased.out).toBe(`erasure     ${id}\nstatus      pending\nfollow      aimass receipt ${id}\n`);

    const waited = await aimass('erase', '--user', 'bob', '--wait', '--timeout', '15');
    expect(waited.code).toBe(EXIT_OK);
    expect(waited.err).toMatch(new RegExp(`^erasure ${id} requested \\(the user already had this erasure\\)\\n`));
    expect(waited.err).toMatch(/\[erase \d+:\d\d\] erasure \S+ completed: privacy completed · cli-test completed\n$/);
    expect(waited.out).toContain(`erasure     ${id}\nuser        pseudonym ${pseudonymizer.pseudonymize('acme', 'bob')}\nstatus      completed\n`);
    expect(waited.out).toMatch(/\n {2}cli-test +completed +\S+Z +2 items deleted\n$/);

    const receipt = await aimass('receipt', id!, '--json');
    expect(receipt.code).toBe(EXIT_OK);
    expect(JSON.parse(receipt.out)).toMatchObject({ erasureId: id, status: 'completed', confirmations: [{ service: 'privacy', status: 'completed' }, { service: 'cli-test', status: 'completed', itemsDeleted: 2 }] });

    const unknown = await aimass('receipt', '0190a5b8-7a2b-7c3d-8e4f-0123456789ab');
    expect(unknown.code).toBe(EXIT_FAILURE);
    expect(unknown.err).toMatch(/^aimass receipt: NOT_FOUND: /);
  });

  it('gives up after --timeout, prints the receipt as it stood and exits 1 naming the service still pending', async () => {
    held.add(pseudonymizer.pseudonymize('acme', 'carol'));
    const waited = await aimass('erase', '--user', 'carol', '--wait', '--timeout', '1');
    expect(waited.code).toBe(EXIT_FAILURE);
    expect(waited.out).toMatch(/\nstatus +(pending|failed): waiting for cli-test\n/);
    expect(waited.err).toMatch(/\naimass erase: DEADLINE_EXCEEDED: erasure \S+ is not complete after 1\.\d s, waiting for cli-test \((pending|failed: held back by the test)\); /);
  });
});

describe('aimass export', () => {
  // No personal-model or updater here: an erased user's export is privacy's own record of the
  // erasure; anyone else's needs those services, and the command says which is missing.
  it('writes the document to stdout, or to a file only its owner can read', async () => {
    await aimass('consent', 'grant', '--user', 'dana', '--purpose', 'training');
    expect((await aimass('erase', '--user', 'dana', '--reason', 'gdpr-art17')).code).toBe(EXIT_OK);
    const printed = await aimass('export', '--user', 'dana');
    expect(printed).toMatchObject({ code: EXIT_OK, err: '' });
    const document = JSON.parse(printed.out) as { erasure: { erasureId: string } };
    expect(document).toMatchObject({ user: { pseudonym: pseudonymizer.pseudonymize('acme', 'dana') }, erasure: { reason: 'gdpr-art17' } });
    expect(printed.out).not.toContain('dana');

    const written = await aimass('export', '--user', 'dana', '--out', 'dana.json');
    expect(written.code).toBe(EXIT_OK);
    const path = join(dir.path, 'dana.json');
    expect(written.out).toMatch(new RegExp(`^export written to ${path} \\(\\d+ bytes, generated \\S+Z\\)\\n$`));
    // A second export (its time, and the erasure's progress, may differ): the same user and erasure.
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ user: { pseudonym: pseudonymizer.pseudonymize('acme', 'dana') }, erasure: { erasureId: document.erasure.erasureId } });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('exits 1 naming what the export is missing, and when the file cannot be written', async () => {
    await aimass('consent', 'grant', '--user', 'eve', '--purpose', 'training');
    const incomplete = await aimass('export', '--user', 'eve');
    expect(incomplete.code).toBe(EXIT_FAILURE);
    expect(incomplete.err).toMatch(/^aimass export: FAILED_PRECONDITION: Export needs the personal-model service's address/);

    const unwritable = await aimass('export', '--user', 'dana', '--out', 'missing-dir/dana.json');
    expect(unwritable.code).toBe(EXIT_FAILURE);
    expect(unwritable.err).toMatch(/^aimass export: cannot write the export to \S+missing-dir\/dana\.json: ENOENT/);
  });
});
