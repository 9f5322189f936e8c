import { InvalidArgumentError } from '@aimass/platform';
import type { v1 } from '@aimass/proto';

/** The `fusion.limits` keys validation uses. */
export interface InputLimits {
  readonly maxInputBytes: number;
  readonly maxUserIdBytes: number;
  readonly maxKeyBytes: number;
}

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Joins a prefix (`items[3]`) and a field (`input.text`) into a dotted proto path. */
export function fieldPath(prefix: string, field: string): string {
  return prefix === '' ? field : `${prefix}.${field}`;
}

/** The raw content types the general model reads. */
export function isSupportedRawType(contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === '' || type === 'message/rfc822' || type.startsWith('text/');
}

/** UTF-8 bytes the input carries (what `limits.maxInputBytes` bounds). */
export function inputBytes(input: v1.InputPayload): number {
  const kind = input.kind;
  switch (kind?.$case) {
    case 'text':
      return utf8Bytes(kind.value);
    case 'mail':
      return (
        utf8Bytes(kind.value.subject) +
        utf8Bytes(kind.value.body) +
        Object.entries(kind.value.headers).reduce((n, [name, value]) => n + utf8Bytes(name) + utf8Bytes(value), 0)
      );
    case 'raw':
      return kind.value.data.byteLength;
    default:
      return 0;
  }
}

/**
 * Checks one input before any model sees it: present, not blank, of a kind the general model
 * reads, and within the size limit. The message names the field and says what to send instead.
 */
export function validateInput(input: v1.InputPayload | undefined, prefix: string, limits: InputLimits): v1.InputPayload {
  const field = fieldPath(prefix, 'input');
  const kind = input?.kind;
  if (!input || !kind) throw new InvalidArgumentError(`${field} is empty: set text, mail or raw`, { field });
  switch (kind.$case) {
    case 'text':
      if (kind.value.trim() === '') throw new InvalidArgumentError(`${field}.text is empty: send the text to classify`, { field: `${field}.text` });
      break;
    case 'mail':
      if (kind.value.subject.trim() === '' && kind.value.body.trim() === '') {
        throw new InvalidArgumentError(`${field}.mail has neither subject nor body: send at least one`, { field: `${field}.mail` });
      }
      break;
    case 'raw':
      if (kind.value.data.byteLength === 0) throw new InvalidArgumentError(`${field}.raw.data is empty: send the message bytes`, { field: `${field}.raw.data` });
      if (!isSupportedRawType(kind.value.contentType)) {
        throw new InvalidArgumentError(`${field}.raw.content_type '${kind.value.contentType.slice(0, 100)}' is not supported: use message/rfc822 or text/*`, {
          field: `${field}.raw.content_type`,
        });
      }
      break;
    case 'features':
      throw new InvalidArgumentError(`${field}.features: typed features are not supported by the general model: send text, mail or raw`, {
        field: `${field}.features`,
      });
  }
  const bytes = inputBytes(input);
  if (bytes > limits.maxInputBytes) {
    throw new InvalidArgumentError(`${field} is ${bytes} bytes, more than the limit of ${limits.maxInputBytes}: shorten it (e.g. cut the body)`, {
      field: `${field}.${kind.$case}`,
    });
  }
  return input;
}

/** A user id: present and within the limit. Never echoed back (it may identify a person). */
export function validateUserId(userId: string, prefix: string, limits: InputLimits): string {
  const field = fieldPath(prefix, 'user_id');
  if (userId === '') throw new InvalidArgumentError(`${field} is required: the enterprise's id of the user the input belongs to`, { field });
  const bytes = utf8Bytes(userId);
  if (bytes > limits.maxUserIdBytes) {
    throw new InvalidArgumentError(`${field} is ${bytes} bytes, more than the limit of ${limits.maxUserIdBytes}`, { field });
  }
  return userId;
}

/** An item id or idempotency key: within the limit (empty allowed; the caller says when it is required). */
export function validateKey(value: string, field: string, limits: InputLimits): string {
  const bytes = utf8Bytes(value);
  if (bytes > limits.maxKeyBytes) throw new InvalidArgumentError(`${field} is ${bytes} bytes, more than the limit of ${limits.maxKeyBytes}`, { field });
  return value;
}

/** A feedback label: one of the general model's labels, which the message lists. */
export function validateLabel(label: string, labels: readonly string[], field = 'label'): number {
  if (label === '') throw new InvalidArgumentError(`${field} is required: one of ${labels.join(', ')}`, { field });
  const index = labels.indexOf(label);
  if (index < 0) {
    throw new InvalidArgumentError(`${field} '${label.slice(0, 100)}' is not one of the general model's labels: ${labels.join(', ')}`, { field });
  }
  return index;
}
