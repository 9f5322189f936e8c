import { captureLogs as capture, type CapturedLogs } from '@aimass/testing';

export type LogSink = CapturedLogs;

export function captureLogs(service = 'fusion-test'): LogSink {
  return capture(service);
}
