import { parseMail } from '@aimass/ml';
import type { MailInput } from '@aimass/sdk';

/**
 * Headers that describe the encoding of the original body. The body sent is the decoded plain
 * text, so passing them on would describe a body that is not there (a multipart boundary the
 * server would then look for in vain).
 */
const BODY_ENCODING_HEADERS = new Set(['content-type', 'content-transfer-encoding']);

/**
 * A mail file (RFC 822 / MIME, as saved by mail clients) in the form the public API takes, the
 * form a mail backend has at hand: the subject, the visible text of its text parts (HTML reduced
 * to text, transfer encodings and charsets decoded) and its headers, names lower-cased, repeated
 * fields (Received) joined with a space. Text without a header block becomes a body alone.
 */
export function mailFromRfc822(raw: string): MailInput {
  const parsed = parseMail(raw);
  let subject: string | undefined;
  const headers: Record<string, string> = {};
  for (const { name, value } of parsed.headers) {
    if (name === 'subject') {
      subject ??= value;
      continue;
    }
    if (BODY_ENCODING_HEADERS.has(name)) continue;
    headers[name] = headers[name] === undefined ? value : `${headers[name]} ${value}`;
  }
  const body = parsed.parts
    .map((p) => p.text.trim())
    .filter((t) => t !== '')
    .join('\n\n');
  return { subject: subject ?? '', body, headers };
}
