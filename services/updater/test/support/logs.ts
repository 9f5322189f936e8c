export { captureLogs, type CapturedLogs as LogSink } from '@aimass/testing';
