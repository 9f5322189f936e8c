import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@aimass/platform';

/** A logger whose lines a test can read back. */
export interface CapturedLogs {
  readonly logger: Logger;
  /** Everything logged so far, raw (one JSON object per line). */
  text(): string;
  /** Every line logged so far, parsed. */
  lines(): Record<string, unknown>[];
}

/**
 * The platform's logger writing into memory instead of stdout, so a test can assert what a service
 * logged (and what it must never log: user ids, secrets).
 */
export function captureLogs(service: string, level: 'debug' | 'info' = 'debug'): CapturedLogs {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const text = () => chunks.join('');
  return {
    logger: createLogger({ service, level, destination }),
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
