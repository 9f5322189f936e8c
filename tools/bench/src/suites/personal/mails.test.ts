import { describe, expect, it } from 'vitest';
import { benchMail, personalFeatures } from './mails.js';

const RAW = ['From: Alice <alice@lists.example.org>', 'List-Id: <weekly.example.org>', 'Subject: Weekly digest', 'Content-Type: text/plain', '', 'Ten new offers this week.'].join('\n');

describe('corpus mails as the public API takes them', () => {
  it('sends the subject, the decoded body and the headers (lower-case names, the media type without the body encoding)', () => {
    const m = benchMail({ key: 'easy-ham-1/00001', text: RAW, label: 'ham' });
    expect(m.group).toBe('easy-ham-1');
    expect(m.input.kind?.$case).toBe('mail');
    const mail = m.input.kind?.$case === 'mail' ? m.input.kind.value : undefined;
    expect(mail?.subject).toBe('Weekly digest');
    expect(mail?.body).toBe('Ten new offers this week.');
    expect(mail?.headers).toEqual({ from: 'Alice <alice@lists.example.org>', 'list-id': '<weekly.example.org>', 'content-type': 'text/plain' });
    expect(m.bytes).toBeGreaterThan(mail!.body.length);
  });

  it('gives the personal featurizer the sender and the list', () => {
    const [withList] = personalFeatures([benchMail({ key: 'a/1', text: RAW, label: 'ham' })]);
    const [bodyOnly] = personalFeatures([benchMail({ key: 'a/2', text: '\nTen new offers this week.', label: 'ham' })]);
    expect(withList!.indices.length).toBeGreaterThan(bodyOnly!.indices.length);
  });
});
