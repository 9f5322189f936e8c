import { status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, pseudonymOf, startHarness, type Harness } from './support/harness.js';
import { example, mailWorld, scoreItem, type Mail } from './support/world.js';

describe('bad input gets a clear status and the service keeps serving', () => {
  let h: Harness;
  const world = mailWorld(9);
  const user = pseudonymOf('erin');
  const mail = world.mail();
  beforeAll(async () => {
    h = await startHarness({ limits: { maxScoreItems: 4, maxTrainExamples: 3 } });
    await h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: '', expectedVersion: 0 });
  });
  afterAll(async () => {
    await h?.close();
  });

  const withGeneral = (patch: Partial<v1.GeneralOutput>, m: Mail = mail): Mail => ({ ...m, general: { ...m.general, ...patch } });
  const item = (patch: Partial<v1.ScoreItem> = {}): v1.ScoreItem => ({ ...scoreItem(user, mail), ...patch });

  const scoreCases: [string, v1.ScoreRequest, RegExp, string | undefined][] = [
    ['no items', { items: [] }, /items is empty/, 'items'],
    ['too many items', { items: Array.from({ length: 5 }, () => item()) }, /5 items, more than the limit of 4/, 'items'],
    ['missing pseudonym', { items: [item({ userPseudonym: '' })] }, /items\[0\].user_pseudonym is required/, 'items[0].user_pseudonym'],
    ['raw user id instead of a pseudonym', { items: [item({ userPseudonym: 'erin@example.com' })] }, /not a pseudonym/, 'items[0].user_pseudonym'],
    ['missing general output', { items: [item({ general: undefined })] }, /items\[0\].general is required/, 'items[0].general'],
    ['general output without its model', { items: [item({ general: withGeneral({ model: undefined }).general })] }, /general.model is required/, 'items[0].general.model'],
    ['NaN logit', { items: [item({ general: withGeneral({ logits: [0, Number.NaN] }).general })] }, /logits\[1\] is NaN/, 'items[0].general.logits'],
    ['infinite embedding value', { items: [item(), item({ general: withGeneral({ embedding: mail.general.embedding.map(() => Infinity) }).general })] }, /embedding\[0\] is Infinity/, 'items[1].general.embedding'],
    ['logits of another label count', { items: [item({ general: withGeneral({ logits: [0, 1, 2] }).general })] }, /logits has 3 values but the model has 2 labels \(ham, spam\)/, 'items[0].general.logits'],
    ['embedding of another length', { items: [item({ general: withGeneral({ embedding: [1, 2, 3] }).general })] }, /embedding has 3 values but the model was trained on embeddings of 8/, 'items[0].general.embedding'],
    ['unsorted sparse indices', { items: [item({ sparseFeatures: { dimension: 2 ** 20, indices: [5, 3], values: [1, 1] } })] }, /strictly increasing/, 'items[0].sparse_features.indices'],
    ['sparse index beyond the dimension', { items: [item({ sparseFeatures: { dimension: 16, indices: [16], values: [1] } })] }, /outside the dimension 16/, 'items[0].sparse_features.indices'],
    ['sparse features of another dimension', { items: [item({ sparseFeatures: { dimension: 1024, indices: [3], values: [1] } })] }, /dimension is 1024 but the model's sparse features have dimension 1048576/, 'items[0].sparse_features.dimension'],
    ['NaN sparse value', { items: [item({ sparseFeatures: { dimension: 2 ** 20, indices: [3], values: [Number.NaN] } })] }, /values\[0\] is NaN/, 'items[0].sparse_features.values'],
  ];

  it.each(scoreCases)('Score: %s → INVALID_ARGUMENT naming the field', async (_name, request, message, field) => {
    const err = await failure(h.call('score', request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(err.field).toBe(field);
    // Still serving.
    expect((await h.call('score', { items: [item()] })).results[0]!.status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
  });

  it('a call without a tenant is refused', async () => {
    const err = await failure(h.call('score', { items: [item()] }, { tenant: null }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/x-aimass-tenant/);
    expect((await failure(h.call('score', { items: [item()] }, { tenant: 'Not A Tenant' }))).code).toBe(status.INVALID_ARGUMENT);
  });

  const train = (patch: Partial<v1.TrainRequest>): v1.TrainRequest => ({ userPseudonym: user, examples: [example(mail, 'ham')], idempotencyKey: '', expectedVersion: 1, ...patch });
  const trainCases: [string, v1.TrainRequest, number, RegExp, string | undefined][] = [
    ['label outside the labels', train({ examples: [example(mail, 'ham'), example(mail, 'eggs')] }), status.INVALID_ARGUMENT, /examples\[1\].label 'eggs' is not one of the model's labels \(ham, spam\)/, 'examples[1].label'],
    ['missing label', train({ examples: [example(mail, '')] }), status.INVALID_ARGUMENT, /examples\[0\].label is required: one of ham, spam/, 'examples[0].label'],
    ['no examples', train({ examples: [] }), status.INVALID_ARGUMENT, /examples is empty/, 'examples'],
    ['too many examples', train({ examples: Array.from({ length: 4 }, () => example(mail, 'ham')) }), status.INVALID_ARGUMENT, /4 examples, more than the limit of 3/, 'examples'],
    ['negative weight', train({ examples: [example(mail, 'ham', { weight: -1 })] }), status.INVALID_ARGUMENT, /weight must be a finite number in \[0, 1000\]/, 'examples[0].weight'],
    ['NaN embedding', train({ examples: [example(withGeneral({ embedding: mail.general.embedding.map(() => Number.NaN) }), 'ham')] }), status.INVALID_ARGUMENT, /embedding\[0\] is NaN/, 'examples[0].general.embedding'],
    ['wrong logit count', train({ examples: [example(withGeneral({ logits: [1] }), 'ham')] }), status.INVALID_ARGUMENT, /logits has 1 values but the model has 2 labels/, 'examples[0].general.logits'],
    [
      'examples from two general versions',
      train({ examples: [example(mail, 'ham'), example(withGeneral({ model: { name: 'general', version: '9' } }), 'ham')] }),
      status.INVALID_ARGUMENT,
      /one request trains on one general model version/,
      'examples[1].general.model',
    ],
    ['idempotency key with spaces', train({ idempotencyKey: 'a key' }), status.INVALID_ARGUMENT, /printable ASCII/, 'idempotency_key'],
    ['missing pseudonym', train({ userPseudonym: '' }), status.INVALID_ARGUMENT, /user_pseudonym is required/, 'user_pseudonym'],
    ['stale expected_version', train({ expectedVersion: 0 }), status.ABORTED, /current version is 1/, undefined],
  ];

  it.each(trainCases)('Train: %s → a clear status, nothing stored', async (_name, request, code, message, field) => {
    const before = await h.service.store.countUser('acme', user);
    const err = await failure(h.call('train', request));
    expect(err.code).toBe(code);
    expect(err.details).toMatch(message);
    expect(err.field).toBe(field);
    expect(await h.service.store.countUser('acme', user)).toEqual(before);
    expect((await h.call('getModel', { userPseudonym: user, version: 0, includeParameters: false })).model!.version).toBe(1);
  });

  it('a first Train with a label outside the configured labels stores nothing', async () => {
    const newcomer = pseudonymOf('newcomer');
    const err = await failure(h.call('train', { userPseudonym: newcomer, examples: [example(mail, 'important')], idempotencyKey: 'k', expectedVersion: 0 }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.field).toBe('examples[0].label');
    expect(await h.service.store.countUser('acme', newcomer)).toEqual({ current: 0, versions: 0, idempotency: 0 });
  });

  it('reads, rollbacks and refits name what is wrong', async () => {
    expect((await failure(h.call('getModel', { userPseudonym: user, version: 99, includeParameters: false }))).code).toBe(status.NOT_FOUND);
    const token = await failure(h.call('listVersions', { userPseudonym: user, page: { pageSize: 1, pageToken: 'garbage' } }));
    expect(token.code).toBe(status.INVALID_ARGUMENT);
    expect(token.field).toBe('page.page_token');
    const zero = await failure(h.call('rollback', { userPseudonym: user, toVersion: 0, expectedVersion: 0 }));
    expect(zero.code).toBe(status.INVALID_ARGUMENT);
    expect(zero.field).toBe('to_version');
    expect((await failure(h.call('rollback', { userPseudonym: pseudonymOf('nobody'), toVersion: 1, expectedVersion: 0 }))).code).toBe(status.NOT_FOUND);
    const noGeneral = await failure(h.call('refit', { userPseudonym: user, generalModel: undefined, examples: [example(mail, 'ham')], idempotencyKey: '', expectedVersion: 1 }));
    expect(noGeneral.code).toBe(status.INVALID_ARGUMENT);
    expect(noGeneral.field).toBe('general_model');
    const otherGeneral = await failure(
      h.call('refit', { userPseudonym: user, generalModel: { name: 'general', version: '2' }, examples: [example(mail, 'ham')], idempotencyKey: '', expectedVersion: 1 }),
    );
    expect(otherGeneral.code).toBe(status.INVALID_ARGUMENT);
    expect(otherGeneral.field).toBe('examples[0].general.model');
    const reused = await h.call('train', train({ idempotencyKey: 'once' }));
    expect(reused.model!.version).toBe(2);
    const crossed = await failure(h.call('refit', { userPseudonym: user, generalModel: { name: 'general', version: '1' }, examples: [example(mail, 'ham')], idempotencyKey: 'once', expectedVersion: 2 }));
    expect(crossed.code).toBe(status.INVALID_ARGUMENT);
    expect(crossed.field).toBe('idempotency_key');
    expect((await h.call('deleteUser', { userPseudonym: pseudonymOf('nobody'), erasureId: '' })).deletedVersions).toBe(0);
  });
});
