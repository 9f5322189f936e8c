import type { Duration } from './gen/google/protobuf/duration.js';

const NANOS_PER_MS = 1_000_000;
const NANOS_PER_SECOND = 1_000_000_000;

/**
 * A google.protobuf.Duration from milliseconds (e.g. a performance.now() difference).
 * Sub-millisecond precision is kept down to the nanosecond; negative values keep seconds and
 * nanos of the same sign, as the Duration spec requires.
 */
export function durationFromMs(ms: number): Duration {
  if (!Number.isFinite(ms)) throw new RangeError(`duration must be finite, got ${ms}`);
  const totalNanos = Math.round(ms * NANOS_PER_MS);
  const seconds = Math.trunc(totalNanos / NANOS_PER_SECOND);
  // `+ 0` turns -0 into 0 so a zero duration encodes as empty.
  const nanos = totalNanos - seconds * NANOS_PER_SECOND + 0;
  return { seconds: seconds + 0, nanos };
}

/** Milliseconds in a google.protobuf.Duration. */
export function durationToMs(duration: Duration): number {
  return duration.seconds * 1000 + duration.nanos / NANOS_PER_MS;
}
