import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@aimass/platform';

export interface LogSink {
  logger: Logger;
  /** Everything logged so far, raw. */
  text: () => string;
  lines: () => Record<string, unknown>[];
}

export function captureLogs(service = 'fusion-test'): LogSink {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ service, level: 'debug', destination });
  const text = () => chunks.join('');
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
