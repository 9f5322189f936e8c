import type { v1 } from '@aimass/proto';

/** A mail as the classifier sees it: subject, plain-text body, headers (names are lower-cased on the way out). */
export interface MailInput {
  subject: string;
  body: string;
  headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * What to classify: plain text, a mail, or any `InputPayload` of the protocol as is (for raw
 * `message/rfc822` bytes or typed features: `{ kind: { $case: 'raw', value: { data, contentType } } }`).
 */
export type Input = string | MailInput | v1.InputPayload;

function isPayload(input: object): input is v1.InputPayload {
  return 'kind' in input;
}

/**
 * The protocol form of an input. Only the shape is checked here (a mistake in calling code fails
 * at once with a TypeError); limits on size and content are the server's, answered as
 * INVALID_ARGUMENT naming the field.
 */
export function toInputPayload(input: Input): v1.InputPayload {
  if (typeof input === 'string') return { kind: { $case: 'text', value: input } };
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`input must be a string, a { subject, body, headers } mail or an InputPayload, got ${input === null ? 'null' : typeof input}`);
  }
  if (isPayload(input)) return input;
  if (typeof input.subject !== 'string' || typeof input.body !== 'string') {
    throw new TypeError('a mail input needs string `subject` and `body` (use "" for an empty one)');
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    if (typeof value !== 'string') throw new TypeError(`mail header "${name}" must be a string`);
    // The protocol's header names are lower-case; two spellings of one name become one entry.
    const key = name.toLowerCase();
    headers[key] = headers[key] === undefined ? value : `${headers[key]} ${value}`;
  }
  return { kind: { $case: 'mail', value: { subject: input.subject, body: input.body, headers } } };
}
