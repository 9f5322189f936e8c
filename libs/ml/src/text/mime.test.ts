import { describe, expect, it } from 'vitest';
import { decodeEncodedWords, headerValue, htmlTagNames, htmlToText, mediaTypeOf, parseContentType, parseMail } from './mime.js';
import { CHINESE_SPAM, MULTIPART_SPAM, PLAIN_HAM } from './testing/mails.js';

describe('parseMail', () => {
  it('skips the mbox From line, unfolds folded headers and lowercases field names', () => {
    const mail = parseMail(PLAIN_HAM);
    expect(mail.headers[0]).toEqual({ name: 'return-path', value: '<alice@example.org>' });
    expect(headerValue(mail.headers, 'subject')).toBe('Re: lunch on Thursday?');
    expect(headerValue(mail.headers, 'received')).toContain('by mx.example.net (Postfix)');
    expect(mail.parts).toEqual([{ contentType: 'text/plain', text: 'Hi Bob, shall we meet at noon? The café is open.\n' }]);
  });

  it('walks multipart bodies, decodes quoted-printable and base64, strips HTML and skips attachments', () => {
    const mail = parseMail(MULTIPART_SPAM);
    expect(headerValue(mail.headers, 'subject')).toBe('FREE money 💰');
    expect(mail.parts.map((p) => p.contentType)).toEqual(['text/plain', 'text/html', 'image/gif']);
    expect(mail.parts[0]!.text.trim()).toBe('Win a frée prize today! Click now.');
    const html = mail.parts[1]!;
    expect(html.text).toContain('Cheap');
    expect(html.text).toContain('pills');
    expect(html.text).toContain('& more');
    expect(html.text).toContain('http://www.pills.example.com/buy');
    expect(html.text).not.toContain('<');
    expect(html.text).not.toContain('evil');
    expect(html.htmlTags).toEqual(['html', 'body', 'p', 'b', 'a', 'script']);
    expect(mail.parts[2]!.text).toBe('');
  });

  it('decodes declared charsets (GB2312 in base64, in the body and in an encoded-word subject)', () => {
    const mail = parseMail(CHINESE_SPAM);
    expect(headerValue(mail.headers, 'subject')).toBe('中国你好');
    expect(mail.parts[0]!.text.trim()).toBe('你好世界');
  });

  it('treats text without a header block as a plain body', () => {
    const mail = parseMail('Just some words: no headers here.\nSecond line.');
    expect(mail.headers).toEqual([]);
    expect(mail.parts).toEqual([{ contentType: 'text/plain', text: 'Just some words: no headers here.\nSecond line.' }]);
    expect(parseMail('').parts).toEqual([{ contentType: 'text/plain', text: '' }]);
  });

  it('reads HTML sent as text/plain (after leading comments) but not a plain mail that quotes a tag', () => {
    expect(parseMail('Subject: x\n\n  <!-- a --> <!-- b -->\n<TABLE><tr><td>Deal</td></tr></TABLE>').parts[0]).toMatchObject({
      text: expect.stringContaining('Deal'),
      htmlTags: ['table', 'tr', 'td'],
    });
    const quoted = parseMail('Subject: x\n\nUse <b>bold</b> like this.').parts[0]!;
    expect(quoted.htmlTags).toBeUndefined();
    expect(quoted.text).toBe('Use <b>bold</b> like this.');
  });

  it('reads HTML sent as text/plain, and CRLF line ends', () => {
    const mail = parseMail('Subject: hi\r\nContent-Type: text/plain\r\n\r\n<html><body><font color=red>BUY</font></body></html>\r\n');
    expect(mail.parts[0]!.text.trim()).toBe('BUY');
    expect(mail.parts[0]!.htmlTags).toEqual(['html', 'body', 'font']);
  });

  it('survives malformed input: an unterminated multipart, an unknown charset, deep nesting', () => {
    const broken = 'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=x-bogus\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n';
    expect(parseMail(broken).parts[0]!.text).toBe('hello');
    let nested = 'leaf text';
    for (let i = 0; i < 20; i++) nested = `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n${nested}\n--b${i}--\n`;
    expect(() => parseMail(nested)).not.toThrow();
  });
});

describe('hostile input', () => {
  it.each([
    ['many < without >', '<'.repeat(200_000)],
    ['many open tags without >', '<a href=x '.repeat(30_000)],
    ['many unclosed comments', '<!--'.repeat(50_000)],
    ['comments before a tag that never comes', '<!---->'.repeat(30_000) + 'x'],
    ['an unclosed script', '<html><script>' + 'x'.repeat(200_000)],
    ['entities without end', '&'.repeat(100_000) + '&#'.repeat(50_000)],
  ])('reads %s in linear time', (_name, body) => {
    const started = performance.now();
    const html = parseMail(`Content-Type: text/html\n\n${body}`);
    const plain = parseMail(`Content-Type: text/plain\n\n${body}`);
    expect(html.parts).toHaveLength(1);
    expect(plain.parts).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('cuts absurdly long header values', () => {
    const mail = parseMail(`From: ${'a@'.repeat(100_000)}\nContent-Type: text/plain; ${'x'.repeat(100_000)}\n\nbody`);
    expect(headerValue(mail.headers, 'from')!.length).toBe(4096);
    expect(mail.parts[0]!.text).toBe('body');
  });
});

describe('helpers', () => {
  it('parses content types, repairing quoted-printable damage in parameters', () => {
    expect(parseContentType('Text/HTML; charset=3Dwindows-1252')).toEqual({ type: 'text/html', params: { charset: 'windows-1252' } });
    expect(parseContentType('multipart/alternative;\n boundary="----=_NextPart_000"').params.boundary).toBe('----=_NextPart_000');
    expect(parseContentType(undefined).type).toBe('text/plain');
    expect(parseContentType('garbage').type).toBe('text/plain');
  });

  it('decodes adjacent RFC 2047 words without the space between them', () => {
    expect(decodeEncodedWords('=?iso-8859-1?Q?caf=E9?= =?iso-8859-1?Q?_bar?= end')).toBe('café bar end');
  });

  it('reduces HTML to visible text with entities decoded', () => {
    expect(htmlToText('<!-- c --><style>p{}</style><p>a&nbsp;&lt;b&gt; &#233;&#x41;</p>').replace(/\s+/g, ' ').trim()).toBe('a <b> éA');
    expect(htmlTagNames('<P><p><IMG src=x><br/>')).toEqual(['p', 'img', 'br']);
    expect(htmlToText('a < b and c > d <i>e</i>').replace(/\s+/g, ' ').trim()).toBe('a < b and c > d e');
    expect(htmlToText('<a href="http://x.example/p?q=1">x</a><img src=\'y.gif\'>').replace(/\s+/g, ' ').trim()).toBe('http://x.example/p?q=1 x y.gif');
    expect(htmlToText('<script>var a = "<b>";</script>after<style>p{}</STYLE>end').replace(/\s+/g, ' ').trim()).toBe('after end');
  });
});

describe('mediaTypeOf', () => {
  it('keeps the lower-cased media type and drops the parameters', () => {
    expect(mediaTypeOf('Multipart/Alternative; boundary="----=_NextPart_000"')).toBe('multipart/alternative');
    expect(mediaTypeOf('text/html;charset=utf-8')).toBe('text/html');
    expect(mediaTypeOf(' text/plain ')).toBe('text/plain');
  });
  it('reads a malformed type as text/plain, as the MIME reader does, and a missing one as none', () => {
    expect(mediaTypeOf('html')).toBe('text/plain');
    expect(mediaTypeOf('text/html extra; a=b')).toBe('text/plain');
    expect(mediaTypeOf(undefined)).toBeUndefined();
    expect(mediaTypeOf('  ')).toBeUndefined();
  });
});
