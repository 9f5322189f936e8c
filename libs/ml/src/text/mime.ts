/**
 * A rough RFC 822 / MIME reader: enough to featurize mail, not a validator. Anything it cannot
 * make sense of is treated as plain text rather than rejected, because the featurizer must give
 * an answer for every input the service receives.
 */

export interface MailPart {
  /** Lowercased `type/subtype`; `text/plain` when absent. */
  contentType: string;
  /** Decoded text for text/* parts, HTML reduced to its visible text; empty for other parts (attachments are not read). */
  text: string;
  /** The declared charset, lowercased, when there was one. */
  charset?: string;
  /** Distinct lowercased tag names, in order of first use, when the part held HTML. */
  htmlTags?: string[];
}

export interface ParsedMail {
  /** Header fields in order, names lowercased, folded lines joined, RFC 2047 words decoded. */
  headers: { name: string; value: string }[];
  /** Leaf parts in document order (a non-multipart mail has one). */
  parts: MailPart[];
}

const MAX_DEPTH = 8;
const HTML_START = /^<(!doctype|html|head|body|table|font|div|p|center|a|img|b|br)\b/i;
/** Header values are cut to this many characters: no real field is longer, and it bounds the work a hostile one causes. */
const MAX_HEADER_VALUE = 4096;
const HEADER_LINE = /^[\x21-\x39\x3b-\x7e]+[ \t]*:/;

/**
 * Splits a mail into headers and decoded leaf parts. Text without a header block (a plain body,
 * as the task API may receive) becomes one text/plain part with no headers.
 */
export function parseMail(raw: string): ParsedMail {
  const text = raw.replace(/\r\n?/g, '\n');
  const parts: MailPart[] = [];
  const { headers, body } = splitHeaders(text.startsWith('From ') ? text.slice(text.indexOf('\n') + 1 || text.length) : text);
  collectParts(headers, body, parts, 0);
  return { headers, parts };
}

export function headerValue(headers: readonly { name: string; value: string }[], name: string): string | undefined {
  return headers.find((h) => h.name === name)?.value;
}

function splitHeaders(text: string): { headers: { name: string; value: string }[]; body: string } {
  const headers: { name: string; value: string }[] = [];
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end);
    if (line.trim() === '') {
      pos = end + 1;
      break;
    }
    if ((line[0] === ' ' || line[0] === '\t') && headers.length > 0) {
      const last = headers[headers.length - 1]!;
      last.value += ' ' + line.trim();
    } else if (HEADER_LINE.test(line)) {
      const colon = line.indexOf(':');
      headers.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
    } else {
      // Not a header block after all (or it ended without a blank line): the rest is body.
      if (headers.length === 0) return { headers, body: text };
      break;
    }
    pos = end + 1;
  }
  for (const h of headers) h.value = decodeEncodedWords(h.value.slice(0, MAX_HEADER_VALUE));
  return { headers, body: text.slice(Math.min(pos, text.length)) };
}

function collectParts(headers: { name: string; value: string }[], body: string, out: MailPart[], depth: number): void {
  const { type, params } = parseContentType(headerValue(headers, 'content-type'));
  if (type.startsWith('multipart/') && params.boundary && depth < MAX_DEPTH) {
    const sections = splitMultipart(body, params.boundary);
    if (sections.length > 0) {
      for (const section of sections) {
        const inner = splitHeaders(section);
        collectParts(inner.headers, inner.body, out, depth + 1);
      }
      return;
    }
  }
  if (type === 'message/rfc822' && depth < MAX_DEPTH) {
    const inner = splitHeaders(body);
    collectParts(inner.headers, inner.body, out, depth + 1);
    return;
  }
  if (!type.startsWith('text/') && !type.startsWith('multipart/')) {
    out.push({ contentType: type, text: '' });
    return;
  }
  const encoding = (headerValue(headers, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  const decoded = decodeBody(body, encoding, params.charset);
  const contentType = type.startsWith('multipart/') ? 'text/plain' : type;
  // HTML sent as text/plain is common in spam; a plain mail that merely quotes a tag is not caught
  // by this test, which wants the document to open with markup.
  const part: MailPart = { contentType, text: decoded };
  if (params.charset) part.charset = params.charset.toLowerCase();
  if (type === 'text/html' || looksLikeHtml(decoded)) {
    part.text = htmlToText(decoded);
    part.htmlTags = htmlTagNames(decoded);
  }
  out.push(part);
}

function splitMultipart(body: string, boundary: string): string[] {
  const delimiter = '--' + boundary;
  const sections: string[] = [];
  const lines = body.split('\n');
  let current: string[] | undefined;
  for (const line of lines) {
    if (line.startsWith(delimiter)) {
      if (current) sections.push(current.join('\n'));
      if (line.startsWith(delimiter + '--')) return sections;
      current = [];
    } else if (current) {
      current.push(line);
    }
  }
  if (current) sections.push(current.join('\n'));
  return sections;
}

export function parseContentType(value: string | undefined): { type: string; params: Record<string, string> } {
  if (!value) return { type: 'text/plain', params: {} };
  const [head = '', ...rest] = value.split(';');
  const type = head.trim().toLowerCase();
  const params: Record<string, string> = {};
  for (const m of rest.join(';').matchAll(/([\w.-]+)\s*=\s*(?:"([^"]*)"|([^\s;]+))/g)) {
    params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  }
  // Mangled quoted-printable headers ("charset=3Dwindows-1252") are common in spam.
  if (params.charset?.toLowerCase().startsWith('3d')) params.charset = params.charset.slice(2);
  if (params.boundary?.startsWith('3D')) params.boundary = params.boundary.slice(2);
  return { type: /^[\w.+-]+\/[\w.+-]+$/.test(type) ? type : 'text/plain', params };
}

function decodeBody(body: string, encoding: string, charset: string | undefined): string {
  if (encoding === 'base64') {
    const compact = body.replace(/[^A-Za-z0-9+/=]/g, '');
    return decodeBytes(Buffer.from(compact, 'base64'), charset);
  }
  if (encoding === 'quoted-printable') return decodeBytes(quotedPrintableBytes(body, false), charset);
  return body;
}

function quotedPrintableBytes(text: string, underscoreIsSpace: boolean): Uint8Array {
  const src = text.replace(/=[ \t]*\n/g, '');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src.charCodeAt(i);
    if (c === 0x3d && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) {
      out.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (underscoreIsSpace && c === 0x5f) {
      out.push(0x20);
    } else if (c < 0x80) {
      out.push(c);
    } else {
      // Already-decoded characters (the string came from a reader that decoded 8-bit bytes).
      for (const b of Buffer.from(src[i]!, 'utf8')) out.push(b);
    }
  }
  return Uint8Array.from(out);
}

export function decodeBytes(bytes: Uint8Array, charset: string | undefined): string {
  const label = normalizeCharset(charset);
  try {
    return new TextDecoder(label).decode(bytes);
  } catch {
    // An unknown or bogus charset label: windows-1252 maps every byte, so nothing is lost.
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

function normalizeCharset(charset: string | undefined): string {
  const label = (charset ?? 'utf-8').trim().toLowerCase();
  if (label === 'ks_c_5601-1987') return 'euc-kr';
  if (label === 'chinesebig5') return 'big5';
  if (label === 'gb2312_charset') return 'gb2312';
  if (label === 'unicode') return 'utf-16le';
  return label;
}

/** Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`) in a header value. */
export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  return value
    .replace(/(=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g, (_all, charset: string, kind: string, text: string) => {
      const bytes = kind.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : quotedPrintableBytes(text, true);
      return decodeBytes(bytes, charset.split('*')[0]);
    });
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', copy: '©', reg: '®' };

/** Whether a text/plain body is really an HTML document (it opens with markup, after comments). */
function looksLikeHtml(text: string): boolean {
  let i = 0;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (!text.startsWith('<!--', i)) break;
    const end = text.indexOf('-->', i + 4);
    if (end < 0) return false;
    i = end + 3;
  }
  return HTML_START.test(text.slice(i, i + 16));
}

/**
 * Visible text of an HTML fragment: comments, scripts and styles dropped, tags replaced by a
 * space (keeping `href`/`src` targets, since where a mail points is among the strongest signs of
 * what it is), entities decoded. A scanner rather than regular expressions over the whole text:
 * those backtrack quadratically on input such as many `<` without `>`, and the service featurizes
 * whatever it is sent.
 */
export function htmlToText(html: string): string {
  const lower = html.toLowerCase();
  const out: string[] = [];
  let i = 0;
  // Position of the next '>' at or after i; recomputed only once i passes it, so the scan is linear.
  let gt = -2;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      out.push(html.slice(i));
      break;
    }
    out.push(html.slice(i, lt));
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      if (end < 0) break;
      out.push(' ');
      i = end + 3;
      continue;
    }
    if (gt !== -1 && gt <= lt) gt = html.indexOf('>', lt + 1);
    if (gt < 0) {
      // No tag can close any more: the rest is text.
      out.push(html.slice(lt));
      break;
    }
    const tag = html.slice(lt + 1, gt);
    // A tag opens with a letter, '/', '!' (doctype, conditional comments) or '?' (XML declarations);
    // any other '<' is text ("a < b").
    if (!/^[a-z/!?]/i.test(tag)) {
      out.push('<');
      i = lt + 1;
      continue;
    }
    const name = /^\/?([a-z][a-z0-9]{0,15})/i.exec(tag)?.[1]?.toLowerCase();
    out.push(' ');
    for (const m of tag.matchAll(/\b(?:href|src)\s*=\s*["']?([^"'\s>]+)/gi)) out.push(m[1]!, ' ');
    i = gt + 1;
    if ((name === 'script' || name === 'style') && tag[0] !== '/') {
      const close = lower.indexOf(`</${name}`, i);
      if (close < 0) break;
      const closeEnd = html.indexOf('>', close);
      if (closeEnd < 0) break;
      i = closeEnd + 1;
    }
  }
  return out.join('').replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});?/gi, (all, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
    }
    return ENTITIES[entity.toLowerCase()] ?? all;
  });
}

/** Distinct tag names of an HTML fragment, in order of first use. */
export function htmlTagNames(html: string): string[] {
  const names = new Set<string>();
  for (const m of html.matchAll(/<([a-zA-Z][a-zA-Z0-9]{0,15})\b/g)) names.add(m[1]!.toLowerCase());
  return [...names];
}

/** A mail as the public API carries it (`MailText`): subject, visible text and headers. */
export interface MailFields {
  subject: string;
  body: string;
  headers: Record<string, string>;
}

/**
 * Headers that describe how the original body was encoded (and, for Content-Type, its parameters:
 * boundary, charset). The body kept is decoded text, so they would describe a body that is not
 * there. Readers of a `MailText` must not apply them to its body either (`BODY_ENCODING_HEADERS`).
 */
export const BODY_ENCODING_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-transfer-encoding']);

/**
 * `text/html; charset="utf-8"` → `text/html`: the media type as the MIME reader reads it (a malformed
 * one is text/plain), without parameters; undefined when there is no Content-Type at all.
 */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  return contentType?.trim() ? parseContentType(contentType).type : undefined;
}

/**
 * A raw mail (RFC 822 / MIME) in the structured form the public API takes: the subject, the visible
 * text of its parts (HTML reduced to text, transfer encodings and charsets decoded) and its headers,
 * names lower-cased, repeated fields (Received) joined with a space. Content-Transfer-Encoding is
 * dropped and Content-Type keeps only its media type (`multipart/alternative`), since the body is
 * now decoded text. The one conversion everyone
 * uses (fusion for raw input, the CLI for mail files, tests and benchmarks), so a mail sent raw and
 * the same mail sent structured give the personal model the same features.
 */
export function mailFromRfc822(raw: string): MailFields {
  const parsed = parseMail(raw);
  let subject: string | undefined;
  let contentType: string | undefined;
  const headers: Record<string, string> = {};
  for (const { name, value } of parsed.headers) {
    if (name === 'subject') {
      subject ??= value;
      continue;
    }
    if (name === 'content-type') contentType ??= value;
    if (BODY_ENCODING_HEADERS.has(name)) continue;
    headers[name] = headers[name] === undefined ? value : `${headers[name]} ${value}`;
  }
  // What the mail was (an HTML newsletter, a plain-text reply) says something about it that its
  // decoded text no longer does; the media type alone, without the parameters that describe the
  // encoded body, is kept for readers that want it (the personal featurizer's body format).
  const mediaType = mediaTypeOf(contentType);
  if (mediaType) headers['content-type'] = mediaType;
  const body = parsed.parts
    .map((p) => p.text.trim())
    .filter((t) => t !== '')
    .join('\n\n');
  return { subject: subject ?? '', body, headers };
}
