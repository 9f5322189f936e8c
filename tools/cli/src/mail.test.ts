import { describe, expect, it } from 'vitest';
import { mailFromRfc822 } from './mail.js';

const MULTIPART = `From sender@example.com  Thu Aug 22 12:36:23 2002
Received: from a.example.com by mx.example.net
Received: from b.example.com by a.example.com
From: "Deals" <deals@shop.example.com>
Subject: =?utf-8?B?RlJFRSBtb25leQ==?=
List-Id: Offers <offers.shop.example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="XYZ"

--XYZ
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 deals today
--XYZ
Content-Type: text/html

<html><body><p>Big <b>sale</b></p></body></html>
--XYZ--
`;

describe('mailFromRfc822', () => {
  it("sends the decoded subject, the visible text of every part and the headers without the body's encoding", () => {
    const mail = mailFromRfc822(MULTIPART);
    expect(mail.subject).toBe('FREE money');
    expect(mail.body).toContain('Café deals today');
    expect(mail.body).toMatch(/Big\s+sale/);
    expect(mail.body).not.toContain('<b>');
    expect(mail.headers).toMatchObject({
      from: '"Deals" <deals@shop.example.com>',
      'list-id': 'Offers <offers.shop.example.com>',
      'mime-version': '1.0',
      received: 'from a.example.com by mx.example.net from b.example.com by a.example.com',
    });
    // The media type says what the mail was; its boundary described a body that is now decoded text.
    expect(mail.headers?.['content-type']).toBe('multipart/alternative');
    expect(mail.headers).not.toHaveProperty('content-transfer-encoding');
    expect(mail.headers).not.toHaveProperty('subject');
  });

  it('treats text without headers as a body', () => {
    expect(mailFromRfc822('just a note\nsecond line\n')).toEqual({ subject: '', body: 'just a note\nsecond line', headers: {} });
  });
});
