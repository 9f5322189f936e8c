import { describe, expect, it } from 'vitest';
import { PSEUDONYM_PATTERN, Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { prependBytesField, UserRequests, userKeyOf, type UserKeySpec } from './users.js';

const SECRET = 'a-test-root-secret-of-at-least-32-bytes';
const PSEUDONYMS: UserKeySpec = { kind: 'pseudonym', prefix: 'user-', rootSecret: SECRET, tenant: 'acme' };

describe('user keys', () => {
  it('names users by rank, or by the pseudonym fusion would make of that id', () => {
    expect(userKeyOf({ kind: 'user-id', prefix: 'user-' }, 17)).toBe('user-17');
    const p = userKeyOf(PSEUDONYMS, 17);
    expect(p).toMatch(PSEUDONYM_PATTERN);
    expect(p).toBe(new Pseudonymizer({ rootSecret: SECRET }).pseudonymize('acme', 'user-17'));
  });
});

describe('prependBytesField', () => {
  it('puts the user into a Predict template, keeping everything else', () => {
    const input: v1.InputPayload = { kind: { $case: 'text', value: 'hello world' } };
    const template = v1.PredictRequest.encode({ userId: '', input, options: undefined }).finish();
    const decoded = v1.PredictRequest.decode(prependBytesField(template, 1, new TextEncoder().encode('user-5')));
    expect(decoded.userId).toBe('user-5');
    expect(decoded.input).toEqual(input);
  });

  it('puts the user into the only item of a Score request', () => {
    const item = v1.ScoreItem.encode({
      itemId: '0',
      userPseudonym: '',
      general: { model: { name: 'general', version: '1' }, logits: [0, 1.5], probabilities: [0.2, 0.8], embedding: [0.25, -0.5] },
      sparseFeatures: { dimension: 1024, indices: [3, 700], values: [1, 0.5] },
    }).finish();
    // A long value: its length takes two varint bytes, and so does the item's.
    const user = 'x'.repeat(200);
    const request = v1.ScoreRequest.decode(prependBytesField(item, 2, new TextEncoder().encode(user), 1));
    expect(request.items).toHaveLength(1);
    expect(request.items[0]?.userPseudonym).toBe(user);
    expect(request.items[0]?.sparseFeatures?.indices).toEqual([3, 700]);
    expect(request.items[0]?.general?.logits).toEqual([0, 1.5]);
  });
});

describe('UserRequests', () => {
  it('cycles through ranks 1..count', () => {
    const users = new UserRequests({ key: { kind: 'user-id', prefix: 'u' }, pick: { kind: 'cycle', count: 3 }, field: 1 });
    const template = v1.PredictRequest.encode({ userId: '', input: undefined, options: undefined }).finish();
    const ids = Array.from({ length: 7 }, () => v1.PredictRequest.decode(users.request(template)).userId);
    expect(ids).toEqual(['u1', 'u2', 'u3', 'u1', 'u2', 'u3', 'u1']);
  });

  it('draws Zipf users, the same sequence for the same seed, from a pseudonym table', () => {
    const selection = { key: PSEUDONYMS, pick: { kind: 'zipf', count: 500, exponent: 1, seed: 3 }, field: 1 } as const;
    const template = v1.PredictRequest.encode({ userId: '', input: undefined, options: undefined }).finish();
    const draw = (users: UserRequests) => Array.from({ length: 2000 }, () => v1.PredictRequest.decode(users.request(template)).userId);
    const first = draw(new UserRequests(selection));
    expect(draw(new UserRequests(selection))).toEqual(first);
    const top = userKeyOf(PSEUDONYMS, 1);
    const share = first.filter((u) => u === top).length / first.length;
    // H(500) ≈ 6.79: rank 1 has ~14.7% of the traffic.
    expect(share).toBeGreaterThan(0.11);
    expect(share).toBeLessThan(0.19);
    for (const u of first.slice(0, 50)) expect(u).toMatch(PSEUDONYM_PATTERN);
  });
});
