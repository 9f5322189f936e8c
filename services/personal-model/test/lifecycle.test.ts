import { status } from '@grpc/grpc-js';
import { PERSONAL_MODEL_FORMAT, PersonalModel } from '@aimass/ml';
import { v1 } from '@aimass/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, pseudonymOf, startHarness, type Harness } from './support/harness.js';
import { GENERAL, example, mailWorld, scoreItem } from './support/world.js';

describe('personal-model over gRPC on SQLite', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const world = mailWorld(3);
  const spamSender = world.senders.find((s) => s.crowd === 'spam')!.domain;

  it('answers NO_MODEL for a user without a model, not an error', async () => {
    const res = await h.call('score', { items: [scoreItem(pseudonymOf('nobody'), world.mail(), 'x1')] });
    expect(res.results).toHaveLength(1);
    expect(res.results[0]).toMatchObject({ itemId: 'x1', status: v1.ScoreStatus.SCORE_STATUS_NO_MODEL, logits: [], correctionLogits: [], exampleCount: 0 });
    expect((await failure(h.call('getModel', { userPseudonym: pseudonymOf('nobody'), version: 0, includeParameters: false }))).code).toBe(status.NOT_FOUND);
    expect((await failure(h.call('listVersions', { userPseudonym: pseudonymOf('nobody'), page: undefined }))).code).toBe(status.NOT_FOUND);
  });

  it('trains on feedback and the next score follows the user', async () => {
    const user = pseudonymOf('alice');
    const probe = world.mail(spamSender);
    const other = world.mail(world.senders.find((s) => s.crowd === 'ham')!.domain);
    // Alice wants this shop's mail: she labels it ham although the crowd calls it spam.
    const examples = Array.from({ length: 12 }, () => example(world.mail(spamSender), 'ham'));
    const trained = await h.call('train', { userPseudonym: user, examples, idempotencyKey: 'fb-1', expectedVersion: 0 });
    expect(trained.duplicate).toBe(false);
    expect(trained.model).toMatchObject({
      userPseudonym: user,
      model: { name: 'personal-logreg', version: '1' },
      version: 1,
      generalModel: GENERAL,
      exampleCount: 12,
      kind: v1.UpdateKind.UPDATE_KIND_TRAIN,
      restoredFromVersion: 0,
      current: true,
    });
    expect(trained.model!.createdAt).toBeInstanceOf(Date);

    const res = await h.call('score', { items: [scoreItem(user, probe, 'p'), scoreItem(user, other, 'o')] });
    const [p, o] = res.results;
    expect(p).toMatchObject({ itemId: 'p', status: v1.ScoreStatus.SCORE_STATUS_OK, model: { name: 'personal-logreg', version: '1' }, pairedGeneralModel: GENERAL, exampleCount: 12 });
    expect(p!.logits).toHaveLength(2);
    expect(p!.logits[0]).toBe(0);
    expect(p!.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // Stacked: the general model's spam margin plus the correction now says ham.
    const generalMargin = probe.general.logits[1]! - probe.general.logits[0]!;
    expect(generalMargin).toBeGreaterThan(1);
    expect(generalMargin + p!.correctionLogits[1]!).toBeLessThan(0);
    // The standalone head says ham for this sender too.
    expect(p!.probabilities[0]!).toBeGreaterThan(0.5);
    // Mail from a sender she never labelled keeps (nearly) the general answer.
    expect(Math.abs(o!.correctionLogits[1]!)).toBeLessThan(Math.abs(p!.correctionLogits[1]!) / 3);
  });

  it('describes versions and exports parameters', async () => {
    const user = pseudonymOf('alice');
    const got = await h.call('getModel', { userPseudonym: user, version: 0, includeParameters: true });
    expect(got.model).toMatchObject({ version: 1, current: true, exampleCount: 12 });
    expect(got.parametersContentType).toBe(PERSONAL_MODEL_FORMAT.contentType);
    const model = PersonalModel.deserialize(new Uint8Array(got.parameters));
    expect(model.exampleCount).toBe(12);
    expect(model.classes).toBe(2);
    const bare = await h.call('getModel', { userPseudonym: user, version: 1, includeParameters: false });
    expect(bare.parameters.length).toBe(0);
    expect(bare.parametersContentType).toBe('');
    expect((await failure(h.call('getModel', { userPseudonym: user, version: 7, includeParameters: false }))).code).toBe(status.NOT_FOUND);
  });

  it('applies an idempotency key once', async () => {
    const user = pseudonymOf('bob');
    const examples = [example(world.mail(), 'spam'), example(world.mail(), 'ham')];
    const first = await h.call('train', { userPseudonym: user, examples, idempotencyKey: 'evt-42', expectedVersion: 0 });
    // A retry (even with a stale expected_version) returns the version the key produced.
    const again = await h.call('train', { userPseudonym: user, examples, idempotencyKey: 'evt-42', expectedVersion: 0 });
    expect(again.duplicate).toBe(true);
    expect(again.model).toMatchObject({ version: first.model!.version, exampleCount: 2, current: true });
    const versions = await h.call('listVersions', { userPseudonym: user, page: undefined });
    expect(versions.versions.map((v) => v.version)).toEqual([1]);
    expect(await h.service.store.countUser('acme', user)).toEqual({ current: 1, versions: 1, idempotency: 1 });
  });

  it('keeps tenants apart: the same pseudonym in another tenant is another user', async () => {
    const user = pseudonymOf('alice');
    const res = await h.call('score', { items: [scoreItem(user, world.mail(spamSender))] }, { tenant: 'globex' });
    expect(res.results[0]!.status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
    expect((await failure(h.call('getModel', { userPseudonym: user, version: 0, includeParameters: false }, { tenant: 'globex' }))).code).toBe(status.NOT_FOUND);
    // Its own first model starts at version 1 and does not touch acme's.
    const trained = await h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: 'fb-1', expectedVersion: 0 }, { tenant: 'globex' });
    expect(trained).toMatchObject({ duplicate: false, model: { version: 1, exampleCount: 1 } });
    const acme = await h.call('getModel', { userPseudonym: user, version: 0, includeParameters: false });
    expect(acme.model).toMatchObject({ version: 1, exampleCount: 12 });
    await h.call('deleteUser', { userPseudonym: user, erasureId: 'e-1' }, { tenant: 'globex' });
    expect((await h.call('getModel', { userPseudonym: user, version: 0, includeParameters: false })).model!.exampleCount).toBe(12);
  });

  it('pairs a model with its general model version, and refits it on a new one', async () => {
    const user = pseudonymOf('carol');
    await h.call('train', { userPseudonym: user, examples: [example(world.mail(spamSender), 'ham'), example(world.mail(spamSender), 'ham')], idempotencyKey: '', expectedVersion: 0 });
    const v2 = { name: GENERAL.name, version: '2' };
    const newer = world.mail(spamSender, v2);
    const mismatch = await h.call('score', { items: [scoreItem(user, newer, 'n')] });
    expect(mismatch.results[0]).toMatchObject({
      itemId: 'n',
      status: v1.ScoreStatus.SCORE_STATUS_GENERAL_VERSION_MISMATCH,
      pairedGeneralModel: GENERAL,
      model: { version: '1' },
      logits: [],
      exampleCount: 2,
    });
    const err = await failure(h.call('train', { userPseudonym: user, examples: [example(newer, 'ham')], idempotencyKey: '', expectedVersion: 1 }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/paired with general model general version 1.*Refit/);

    const history = Array.from({ length: 5 }, () => example(world.mail(spamSender, v2), 'ham'));
    const refit = await h.call('refit', { userPseudonym: user, generalModel: v2, examples: history, idempotencyKey: 'refit-1', expectedVersion: 1 });
    expect(refit.model).toMatchObject({ version: 2, generalModel: v2, exampleCount: 5, kind: v1.UpdateKind.UPDATE_KIND_REFIT });
    const ok = await h.call('score', { items: [scoreItem(user, newer)] });
    expect(ok.results[0]).toMatchObject({ status: v1.ScoreStatus.SCORE_STATUS_OK, pairedGeneralModel: v2, exampleCount: 5 });
    const dup = await h.call('refit', { userPseudonym: user, generalModel: v2, examples: history, idempotencyKey: 'refit-1', expectedVersion: 1 });
    expect(dup).toMatchObject({ duplicate: true, model: { version: 2 } });
  });

  it('erases a user: every version, key and cached copy', async () => {
    const user = pseudonymOf('dave');
    for (let v = 0; v < 3; v++) await h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: `k${v}`, expectedVersion: v });
    await h.call('score', { items: [scoreItem(user, world.mail())] }); // cached now
    expect(await h.service.store.countUser('acme', user)).toEqual({ current: 1, versions: 3, idempotency: 3 });
    const deleted = await h.call('deleteUser', { userPseudonym: user, erasureId: 'erasure-1' });
    expect(deleted.deletedVersions).toBe(3);
    expect(await h.service.store.countUser('acme', user)).toEqual({ current: 0, versions: 0, idempotency: 0 });
    const res = await h.call('score', { items: [scoreItem(user, world.mail())] });
    expect(res.results[0]!.status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
    expect((await h.call('deleteUser', { userPseudonym: user, erasureId: 'erasure-1' })).deletedVersions).toBe(0);
    // A used key no longer exists: training again starts a fresh model at version 1.
    const again = await h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: 'k0', expectedVersion: 0 });
    expect(again).toMatchObject({ duplicate: false, model: { version: 1, exampleCount: 1 } });
  });
});
