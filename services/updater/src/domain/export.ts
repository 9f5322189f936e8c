/**
 * ExportFeedback: a user's history as the updater holds it, for the privacy service's Export
 * (the user's right of access). Entries oldest first, the input decrypted, bounded in count and
 * in bytes so the answer fits the caller's message limit; what does not fit is counted.
 */
import { InvalidArgumentError, PSEUDONYM_PATTERN } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { HistoryEntry } from './feedback.js';

/** A history entry with what the store knows about it. */
export interface ExportableEntry extends HistoryEntry {
  readonly applied: boolean;
  readonly rejected: string | undefined;
}

/** Longer than any pseudonym: refused before the pattern is even tried. */
const MAX_PSEUDONYM_LENGTH = 64;

export function checkExportPseudonym(value: string): string {
  const field = 'user_pseudonym';
  if (value === '') throw new InvalidArgumentError(`${field} is required: the user's pseudonym (32 characters a-z, 2-7), as privacy computes it`, { field });
  if (value.length > MAX_PSEUDONYM_LENGTH) throw new InvalidArgumentError(`${field} is ${value.length} characters long; a pseudonym has 32`, { field });
  if (!PSEUDONYM_PATTERN.test(value)) throw new InvalidArgumentError(`${field} is not a pseudonym: expected 32 characters a-z, 2-7 (send the pseudonym, never a user id)`, { field });
  return value;
}

/** One entry as exported; `input` undefined when it can no longer be read (its key destroyed). */
export function exportedFeedback(entry: ExportableEntry, input: v1.InputPayload | undefined): v1.ExportedFeedback {
  return {
    eventId: entry.eventId,
    streamSequence: entry.sequence,
    occurredAt: entry.occurredAt,
    label: entry.label,
    predictionId: entry.predictionId,
    input,
    generalModel: entry.generalModel ? { name: entry.generalModel.name, version: entry.generalModel.version } : undefined,
    applied: entry.applied,
    rejected: entry.rejected ?? '',
  };
}

/** Field tag and length prefix of one repeated entry in the response, at most. */
const ENTRY_FRAMING_BYTES = 6;

/** Bytes `item` adds to an ExportFeedbackResponse. */
export function exportedSize(item: v1.ExportedFeedback): number {
  return v1.ExportedFeedback.encode(item).finish().byteLength + ENTRY_FRAMING_BYTES;
}

/**
 * Collects entries in order while they fit in `maxBytes`; the first that does not ends the
 * answer (a later, smaller one is not taken, so the answer stays a prefix of the history).
 */
export class ExportCollector {
  readonly feedback: v1.ExportedFeedback[] = [];
  #bytes = 0;
  #full = false;

  constructor(private readonly maxBytes: number) {}

  /** False once the answer is full; the item is not taken then. */
  add(item: v1.ExportedFeedback): boolean {
    if (this.#full) return false;
    const size = exportedSize(item);
    if (this.#bytes + size > this.maxBytes) {
      this.#full = true;
      return false;
    }
    this.#bytes += size;
    this.feedback.push(item);
    return true;
  }

  get full(): boolean {
    return this.#full;
  }

  response(total: number): v1.ExportFeedbackResponse {
    return { feedback: this.feedback, omitted: Math.max(0, total - this.feedback.length) };
  }
}
