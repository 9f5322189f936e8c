import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { v1 } from '@aimass/proto';
import { freePort, tempDir, type TempDir } from '@aimass/testing';
import { run } from '../src/cli.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE } from '../src/exit-codes.js';
import type { CliIo } from '../src/io.js';
import type { PersonalizationReport } from '../src/eval/report.js';
import { startScriptedInference, type ScriptedInference } from './scripted-inference.js';

let server: ScriptedInference;
let dir: TempDir;

interface Captured {
  io: CliIo;
  out: () => string;
  err: () => string;
}

function capture(stdin = ''): Captured {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      env: {},
      cwd: dir.path,
      readStdin: async () => stdin,
    },
    out: () => out,
    err: () => err,
  };
}

beforeAll(async () => {
  server = await startScriptedInference();
});
afterAll(() => server.stop());
beforeEach(async () => {
  dir = await tempDir('aimass-cli-');
  server.requests.length = 0;
  server.learn = true;
  server.trainingDelayMs = 0;
  server.failRefits = false;
});
afterEach(async () => {
  await dir.remove();
});

const MAIL = `From: Alice <alice@friends.example>
To: bob@example.net
Subject: lunch
List-Id: Lunch club <lunch.friends.example>
Content-Type: text/plain

SPAMWORD-free, see you at noon
`;

describe('aimass predict', () => {
  it('prints the answer and how it was made, for the default tenant', async () => {
    const c = capture();
    expect(await run(['predict', '--address', server.address, '--user', 'u1', '--text', 'win SPAMWORD now'], c.io)).toBe(EXIT_OK);
    expect(c.out()).toMatch(/^spam {2}\(p=0\.9000\)\n/);
    expect(c.out()).toContain('fallbacks   no_personal_model (personal): nothing learned for this sender');
    expect(c.err()).toBe('');
    expect(server.requests[0]).toMatchObject({ method: 'Predict', tenant: 'default' });
  });

  it('prints JSON with --json and sends a mail file as a mail', async () => {
    await writeFile(join(dir.path, 'lunch.eml'), MAIL);
    const c = capture();
    expect(await run(['predict', '--address', server.address, '--tenant', 'acme', '--user', 'u1', '--mail-file', 'lunch.eml', '--strategy', 'general', '--json'], c.io)).toBe(EXIT_OK);
    const result = JSON.parse(c.out()) as { label: string; probabilities: Record<string, number>; provenance: { appliedStrategy: string } };
    expect(result.label).toBe('spam');
    expect(result.probabilities.ham).toBeCloseTo(0.1, 6);
    expect(result.provenance.appliedStrategy).toBe('general');
    const request = server.requests[0]!;
    expect(request.tenant).toBe('acme');
    const body = request.body as v1.PredictRequest;
    expect(body.options?.strategy).toBe(v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY);
    expect(body.input?.kind?.$case).toBe('mail');
    if (body.input?.kind?.$case === 'mail') {
      expect(body.input.kind.value.subject).toBe('lunch');
      expect(body.input.kind.value.headers['list-id']).toBe('Lunch club <lunch.friends.example>');
    }
  });

  it('reads the mail from stdin with --mail-file -', async () => {
    const c = capture(MAIL);
    expect(await run(['predict', '--address', server.address, '--user', 'u1', '--mail-file', '-'], c.io)).toBe(EXIT_OK);
    expect((server.requests[0]!.body as v1.PredictRequest).input?.kind?.$case).toBe('mail');
  });
});

describe('aimass feedback', () => {
  it('labels a prediction, which changes the next prediction; repeating with the same key is a no-op', async () => {
    await writeFile(join(dir.path, 'lunch.eml'), MAIL);
    const first = capture();
    await run(['predict', '--address', server.address, '--user', 'u2', '--mail-file', 'lunch.eml', '--json'], first.io);
    const { predictionId, label } = JSON.parse(first.out()) as { predictionId: string; label: string };
    expect(label).toBe('spam');

    const fb = capture();
    const args = ['feedback', '--address', server.address, '--user', 'u2', '--prediction-id', predictionId, '--label', 'ham', '--idempotency-key', 'k-1'];
    expect(await run(args, fb.io)).toBe(EXIT_OK);
    expect(fb.out()).toBe('feedback recorded: event e-1, idempotency key k-1\n');
    const again = capture();
    expect(await run([...args, '--json'], again.io)).toBe(EXIT_OK);
    expect(JSON.parse(again.out())).toEqual({ accepted: true, eventId: 'e-1', duplicate: true, idempotencyKey: 'k-1' });

    const next = capture();
    await run(['predict', '--address', server.address, '--user', 'u2', '--mail-file', 'lunch.eml', '--json'], next.io);
    expect((JSON.parse(next.out()) as { label: string }).label).toBe('ham');
  });

  it('exits 1 with the server message on one line when the server refuses the call', async () => {
    const bad = capture();
    expect(await run(['feedback', '--address', server.address, '--user', 'u', '--text', 'x', '--label', 'maybe'], bad.io)).toBe(EXIT_FAILURE);
    expect(bad.err()).toBe('aimass feedback: INVALID_ARGUMENT: label "maybe" is not one of the model\'s labels (ham, spam) (field label)\n');
    const missing = capture();
    expect(await run(['feedback', '--address', server.address, '--user', 'u', '--prediction-id', 'p-nope', '--label', 'ham'], missing.io)).toBe(EXIT_FAILURE);
    expect(missing.err()).toBe('aimass feedback: NOT_FOUND: no prediction p-nope for this user\n');
  });
});

describe('exit codes', () => {
  it('exits 69 when the platform cannot be reached, saying what to do', async () => {
    const c = capture();
    const address = `127.0.0.1:${await freePort()}`;
    expect(await run(['predict', '--address', address, '--user', 'u', '--text', 'x', '--deadline-ms', '2000'], c.io)).toBe(EXIT_UNAVAILABLE);
    expect(c.err()).toMatch(new RegExp(`^aimass predict: UNAVAILABLE: .* — is the platform running at ${address.replace(/\./g, '\\.')}\\? Start it with \`aimass dev\` or pass --address\\n$`));
  });

  it('exits 2 on bad usage with one line pointing to the help', async () => {
    const c = capture();
    expect(await run(['predict', '--text', 'x'], c.io)).toBe(EXIT_USAGE);
    expect(c.err()).toBe('aimass predict: --user is required (see `aimass predict --help`)\n');
    const none = capture();
    expect(await run([], none.io)).toBe(EXIT_USAGE);
    expect(none.err()).toBe('aimass: a command is required (see `aimass --help`)\n');
  });

  it('exits 1 when a mail file cannot be read', async () => {
    const c = capture();
    expect(await run(['predict', '--address', server.address, '--user', 'u', '--mail-file', 'nope.eml'], c.io)).toBe(EXIT_FAILURE);
    expect(c.err()).toBe(`aimass predict: cannot read --mail-file ${join(dir.path, 'nope.eml')}: no such file\n`);
  });

  it('exits 0 with the help on stdout', async () => {
    const c = capture();
    expect(await run(['feedback', '--help'], c.io)).toBe(EXIT_OK);
    expect(c.out()).toMatch(/^Usage: aimass feedback/);
  });

  it('runs the given dev entry for `aimass dev`', async () => {
    const calls: (string | undefined)[] = [];
    expect(await run(['dev', '--data-dir', 'd'], capture().io, { dev: async (dataDir) => void calls.push(dataDir) })).toBe(EXIT_OK);
    expect(calls).toEqual(['d']);
  });
});

describe('aimass models', () => {
  const fast = { models: { pollMs: 5 } };

  it("shows the tenant's lag and a user's training state, as text and as JSON", async () => {
    await run(['feedback', '--address', server.address, '--user', 'm1', '--text', 'SPAMWORD deals', '--label', 'ham', '--idempotency-key', 'm1-a'], capture().io);
    const c = capture();
    expect(await run(['models', 'state', '--address', server.address, '--user', 'm1'], c.io)).toBe(EXIT_OK);
    expect(c.out()).toMatch(/^tenant {6}0 feedback events not yet received by the updater\nuser {8}pseudonym [0-9A-F]{32}\nversion {5}1, paired with general@1\n/);
    expect(c.out()).toContain('pending     0 events received, not yet applied');
    const json = capture();
    expect(await run(['models', 'state', '--address', server.address, '--tenant', 'acme', '--user', 'm1', '--json'], json.io)).toBe(EXIT_OK);
    // Another tenant: the same user id is another user, without a model.
    expect(JSON.parse(json.out())).toMatchObject({ pendingEvents: 0, user: { currentVersion: 0, pendingEvents: 0 }, jobs: [] });
    expect(server.requests.filter((r) => r.method === 'GetTrainingState').map((r) => r.tenant)).toEqual(['default', 'acme']);
  });

  it('queues a refit of one user and waits for it with progress on stderr', async () => {
    const c = capture();
    expect(await run(['models', 'refit', '--address', server.address, '--user', 'm2', '--general-model', 'general:2', '--wait'], c.io, fast)).toBe(EXIT_OK);
    expect(c.out()).toMatch(/^job {9}job-\d+\nstate {7}completed\nusers {7}1 of 1 done, 0 failed\ngeneral {5}general@2\n/);
    expect(c.err()).toMatch(/^\[refit 0:00\] job job-\d+ queued: 0 of 1 users done, 0 failed\n/);
    expect(c.err()).toMatch(/\] job job-\d+ completed: 1 of 1 users done, 0 failed\n$/);
    const request = server.requests.find((r) => r.method === 'RefitUser')!.body as v1.RefitUserRequest;
    expect(request).toEqual({ userId: 'm2', generalModel: { name: 'general', version: '2' } });
  });

  it('queues a refit of the stale users, or of all with --include-current, printing the queued job', async () => {
    await run(['feedback', '--address', server.address, '--user', 'm3', '--text', 'SPAMWORD', '--label', 'ham'], capture().io);
    const stale = capture();
    expect(await run(['models', 'refit', '--address', server.address, '--all', '--json'], stale.io)).toBe(EXIT_OK);
    expect(JSON.parse(stale.out())).toMatchObject({ state: 'queued', usersTotal: 0, generalModel: { name: 'general', version: '1' } });
    const all = capture();
    expect(await run(['models', 'refit', '--address', server.address, '--all', '--include-current'], all.io)).toBe(EXIT_OK);
    expect(all.out()).toMatch(/\nstate {7}queued\nusers {7}0 of [1-9]\d* done, 0 failed\n/);
    expect(server.requests.filter((r) => r.method === 'RefitAll').map((r) => (r.body as v1.RefitAllRequest).onlyStale)).toEqual([true, false]);
  });

  it('exits 1 when the job it waits for fails', async () => {
    server.failRefits = true;
    await run(['feedback', '--address', server.address, '--user', 'm4', '--text', 'SPAMWORD', '--label', 'ham'], capture().io);
    const c = capture();
    expect(await run(['models', 'refit', '--address', server.address, '--all', '--include-current', '--wait'], c.io, fast)).toBe(EXIT_FAILURE);
    expect(c.out()).toContain('state       failed');
    expect(c.err()).toMatch(/\naimass models refit: refit job job-\d+ failed after 1 of \d+ users \(0 failed\): see the updater's log\n$/);
  });

  it('exits 69 when the updater cannot be reached, saying where it was looked for', async () => {
    const c = capture();
    const address = `127.0.0.1:${await freePort()}`;
    expect(await run(['models', 'state', '--deadline-ms', '1000'], { ...c.io, env: { AIMASS_UPDATER_ADDRESS: address } })).toBe(EXIT_UNAVAILABLE);
    expect(c.err()).toMatch(new RegExp(`^aimass models state: UNAVAILABLE: .* — is the updater running at ${address.replace(/\./g, '\\.')}\\? In the one-process mode \`aimass dev\` starts it`));
  });
});

/**
 * A small corpus in the real one's shape (groups, senders, the muted list), so every profile has
 * a slice: the evaluation's whole path runs through gRPC in seconds.
 */
function syntheticCorpus() {
  const items: { key: string; text: string; label: string; group: string }[] = [];
  const add = (group: string, i: number, label: string, headers: string, body: string) =>
    items.push({ key: `${group}/${String(i).padStart(5, '0')}`, group, label, text: `${headers}\nSubject: mail ${i}\n\n${body}\n` });
  for (let i = 0; i < 240; i++) add('easy-ham-1', i, 'ham', `From: p${i % 7}@people${i % 13}.example`, 'notes from the meeting');
  for (let i = 0; i < 120; i++) add('easy-ham-2', i, 'ham', 'From: dev@freshrpms.net\nList-Id: RPM list <rpm-zzzlist.freshrpms.net>', 'new package build');
  for (let i = 0; i < 120; i++) add('hard-ham-1', i, 'ham', 'From: news@newsletters.example', 'this week in gadgets');
  for (let i = 0; i < 60; i++) add('spam-1', i, 'spam', `From: iq@${i % 2 === 0 ? 'insurancemail.net' : 'insiq.us'}`, 'SPAMWORD annuity commissions for agents');
  for (let i = 0; i < 200; i++) add('spam-2', i, 'spam', `From: x@junk${i % 17}.example`, 'SPAMWORD cheap pills');
  return { items, source: 'synthetic-test-corpus' };
}

describe('aimass eval personalization', () => {
  const args = (extra: string[]) => [
    'eval',
    'personalization',
    '--address',
    server.address,
    '--users-per-profile',
    '1',
    '--stream-length',
    '300',
    '--held-out',
    '60',
    '--checkpoints',
    '10,50',
    '--feedback-share',
    '0.3',
    '--run-id',
    'test',
    '--updater-address',
    server.address,
    ...extra,
  ];

  it('streams each user through the API, writes the table, the JSON and the plot', async () => {
    // Feedback applied 40 ms after it returns, as by an updater: checkpoints wait for it.
    server.trainingDelayMs = 40;
    const c = capture();
    const code = await run(args(['--json', 'out/p.json', '--strict']), c.io, { eval: { loadCorpus: syntheticCorpus } });
    // Progress on stderr: 5 users × (before feedback + 2 checkpoints) measurements.
    expect(c.err()).toContain(' | 15/15] ');
    expect(c.err()).toContain(`updater at ${server.address} (0 feedback events pending): each checkpoint waits until the user's feedback is applied`);
    expect(c.err()).toMatch(/@10 feedback \(\d+ mails, \d+ wrong, applied after \d+ ms\)/);
    expect(code).toBe(EXIT_OK);
    const report = JSON.parse(await readFile(join(dir.path, 'out', 'p.json'), 'utf8')) as PersonalizationReport;
    expect(report.profiles.map((p) => p.profile)).toEqual(['newsletter-averse', 'insurance-agent', 'list-muter', 'neutral']);
    expect(report.users.map((u) => u.user_id)).toEqual(['test-newsletter-averse-1', 'test-insurance-agent-1', 'test-list-muter-1', 'test-neutral-1', 'test-neutral-2']);
    for (const p of report.profiles) {
      expect(p.checkpoints.map((x) => x.feedback)).toEqual([0, 10, 50]);
      for (const x of p.checkpoints) {
        expect(x).toHaveProperty('error_general');
        expect(x).toHaveProperty('error_personal');
        expect(x).toHaveProperty('error_fused');
      }
    }
    // Before any feedback the scripted personal model knows nothing: all three agree.
    const muter = report.profiles.find((p) => p.profile === 'list-muter')!;
    const [c0, , c50] = muter.checkpoints;
    expect(c0!.error_fused).toBe(c0!.error_general);
    expect(c0!.error_general).toBeGreaterThan(0);
    expect(c50!.error_fused).toBeLessThan(c50!.error_general!);
    expect(c0!.fallbacks_fused).toHaveProperty('no_personal_model');
    expect(c50!.applied_fused).toHaveProperty('override');
    expect(report.goals_met).toBe(true);
    expect(report.platform.updater).toBe(server.address);
    // Each checkpoint after feedback waited for the 40 ms the scripted updater takes (or less, if the stream had taken that long).
    for (const u of report.users) expect(u.checkpoints.map((x) => x.settle_ms === null)).toEqual([true, false, false]);
    expect(report.settle_ms).toBeGreaterThan(0);
    expect(server.requests.some((r) => r.method === 'GetTrainingState' && (r.body as v1.GetTrainingStateRequest).userId === 'test-list-muter-1')).toBe(true);
    expect(c.out()).toContain('Goals (all goals met):');
    expect(existsSync(join(dir.path, 'out', 'p.svg'))).toBe(true);
    expect(existsSync(join(dir.path, 'out', 'p.png'))).toBe(true);
    // Feedback went by prediction id, each with its own key.
    const feedback = server.requests.filter((r) => r.method === 'Feedback').map((r) => r.body as v1.FeedbackRequest);
    expect(feedback.every((f) => f.target?.$case === 'predictionId')).toBe(true);
    expect(new Set(feedback.map((f) => f.idempotencyKey)).size).toBe(feedback.length);
  });

  it('with --strict, exits 1 when a goal is not met', async () => {
    server.learn = false;
    const c = capture();
    expect(await run(args(['--run-id', 'nolearn', '--plot', 'p.svg', '--strict', '--updater-address', 'none']), c.io, { eval: { loadCorpus: syntheticCorpus } })).toBe(EXIT_FAILURE);
    expect(c.err()).toContain('not waiting for training (--updater-address none)');
    expect(server.requests.some((r) => r.method === 'GetTrainingState')).toBe(false);
    expect(c.out()).toContain('NOT MET');
  });

  it('exits 69 before streaming when the updater cannot be reached, naming it', async () => {
    const updater = `127.0.0.1:${await freePort()}`;
    const c = capture();
    expect(await run(args(['--updater-address', updater, '--deadline-ms', '1000']), c.io, { eval: { loadCorpus: syntheticCorpus } })).toBe(EXIT_UNAVAILABLE);
    expect(c.err()).toMatch(new RegExp(`\\naimass eval personalization: the updater at ${updater.replace(/\./g, '\\.')} could not be reached \\(UNAVAILABLE: .*\\), so the evaluation cannot wait`));
    expect(c.err()).toContain('--updater-address none for a platform whose Feedback trains directly');
    expect(server.requests.some((r) => r.method === 'Predict')).toBe(false);
  });

  it('prints the users and slices with --dry-run without a platform', async () => {
    const c = capture();
    expect(await run(['eval', 'personalization', '--dry-run', '--run-id', 'dry', '--quick'], c.io, { eval: { loadCorpus: syntheticCorpus } })).toBe(EXIT_OK);
    expect(c.out()).toMatch(/dry-list-muter-1\s+divergent\s+\d+\s+\d+/);
    expect(server.requests).toHaveLength(0);
  });
});
