/**
 * The feedback-sequence watermark of a personal model: the highest stream sequence of the examples
 * it has learnt from. The updater consumes feedback at least once, so the same event can come back
 * after a crash, from a second replica, or in a batch retried under a new idempotency key; an
 * example at or below the watermark has already been learnt and is skipped, which makes Train
 * idempotent per event and not only per request.
 */

/** Examples without a sequence (0: fusion's direct Train) are always applied. */
export function alreadyApplied(sourceSequence: number | undefined, watermark: number): boolean {
  return sourceSequence !== undefined && sourceSequence > 0 && sourceSequence <= watermark;
}

/** The examples to learn from, in their order, and how many were skipped. */
export function unseenExamples<T extends { sourceSequence?: number | undefined }>(examples: readonly T[], watermark: number): { apply: T[]; skipped: number } {
  const apply = examples.filter((e) => !alreadyApplied(e.sourceSequence, watermark));
  return { apply, skipped: examples.length - apply.length };
}

/** The watermark after learning from `applied`: never lower than before. */
export function advanceWatermark(watermark: number, applied: readonly { sourceSequence?: number | undefined }[]): number {
  return applied.reduce((max, e) => Math.max(max, e.sourceSequence ?? 0), watermark);
}
