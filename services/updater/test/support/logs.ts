import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@aimass/platform';

export interface LogSink {
  readonly logger: Logger;
  text(): string;
  lines(): Record<string, unknown>[];
}

export function captureLogs(service: string, level: 'debug' | 'info' = 'debug'): LogSink {
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
