import { createPersonalFeaturizer } from '@aimass/ml';
import { describe, expect, it } from 'vitest';
import { personalInputOf } from './personal-input.js';

describe('personal input', () => {
  it('passes text and mail through, header names lower-cased', () => {
    expect(personalInputOf({ kind: { $case: 'text', value: 'hello' } })).toEqual({ text: 'hello' });
    expect(personalInputOf({ kind: { $case: 'mail', value: { subject: 's', body: 'b', headers: { From: 'a@x.example' } } } })).toEqual({
      mail: { subject: 's', body: 'b', headers: { from: 'a@x.example' } },
    });
  });

  it('parses a raw RFC 822 message into the same mail shape, so both give the same features', () => {
    const rawMail = 'From: Shop <news@shop.example>\nList-Id: <deals.shop.example>\nSubject: Big sale\n\nEverything half price today';
    const fromRaw = personalInputOf({ kind: { $case: 'raw', value: { contentType: 'message/rfc822', data: Buffer.from(rawMail) } } });
    expect(fromRaw).toEqual({
      mail: { subject: 'Big sale', body: 'Everything half price today', headers: { from: 'Shop <news@shop.example>', 'list-id': '<deals.shop.example>' } },
    });
    const structured = personalInputOf({
      kind: { $case: 'mail', value: { subject: 'Big sale', body: 'Everything half price today', headers: { from: 'Shop <news@shop.example>', 'list-id': '<deals.shop.example>' } } },
    });
    const featurizer = createPersonalFeaturizer();
    expect(featurizer.featurize(fromRaw)).toEqual(featurizer.featurize(structured));
  });

  it('reads raw text/* as text', () => {
    expect(personalInputOf({ kind: { $case: 'raw', value: { contentType: 'text/plain', data: Buffer.from('just text') } } })).toEqual({ text: 'just text' });
  });
});
