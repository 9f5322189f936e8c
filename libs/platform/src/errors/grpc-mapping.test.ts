import { Writable } from 'node:stream';
import { Metadata, status as Status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  AlreadyExistsError,
  CancelledError,
  ConflictError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  type DomainError,
} from './domain-errors.js';
import { ERROR_REF_KEY, MAX_FIELD_METADATA_CHARS, MAX_STATUS_DETAILS_CHARS, fromGrpcError, toGrpcStatus } from './grpc-mapping.js';

const TABLE: Array<[DomainError, Status]> = [
  [new NotFoundError('no such model'), Status.NOT_FOUND],
  [new InvalidArgumentError('topK must be positive', { field: 'top_k' }), Status.INVALID_ARGUMENT],
  [new AlreadyExistsError('exists'), Status.ALREADY_EXISTS],
  [new ConflictError('version 3 is stale'), Status.ABORTED],
  [new FailedPreconditionError('no model yet'), Status.FAILED_PRECONDITION],
  [new PermissionDeniedError('scope missing'), Status.PERMISSION_DENIED],
  [new UnauthenticatedError('bad key'), Status.UNAUTHENTICATED],
  [new ResourceExhaustedError('quota', { retryAfterMs: 1500 }), Status.RESOURCE_EXHAUSTED],
  [new UnavailableError('try later'), Status.UNAVAILABLE],
  [new DeadlineExceededError('too slow'), Status.DEADLINE_EXCEEDED],
  [new CancelledError('gone'), Status.CANCELLED],
  [new UnimplementedError('not yet'), Status.UNIMPLEMENTED],
];

function captureLogger() {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  return { logger, lines };
}

describe('toGrpcStatus', () => {
  it.each(TABLE)('maps %s to its status code with its message', (err, code) => {
    const s = toGrpcStatus(err);
    expect(s.code).toBe(code);
    expect(s.details).toBe(err.message);
  });

  it('puts retryAfterMs and the invalid field into metadata', () => {
    expect(toGrpcStatus(new ResourceExhaustedError('quota', { retryAfterMs: 1500.4 })).metadata.get('retry-after-ms')).toEqual(['1500']);
    expect(toGrpcStatus(new InvalidArgumentError('bad', { field: 'top_k' })).metadata.get('invalid-argument-field')).toEqual(['top_k']);
    expect(toGrpcStatus(new UnavailableError('later', { retryAfterMs: 20 })).metadata.get('grpc-retry-pushback-ms')).toEqual(['20']);
  });

  it('bounds a message that quotes a huge input, without splitting a surrogate pair', () => {
    // Past 64 KiB of HPACK-encoded trailers the caller's whole HTTP/2 connection dies (see grpc-mapping.ts).
    const s = toGrpcStatus(new NotFoundError(`repository ${'😀'.repeat(40_000)} not found`));
    expect(s.details.length).toBeLessThan(MAX_STATUS_DETAILS_CHARS + 50);
    expect(s.details).toMatch(/\.\.\. \(\d+ more characters cut\)$/);
    expect(encodeURIComponent(s.details).length).toBeLessThan(13_000); // throws on a lone surrogate
  });

  it('replaces lone surrogates in a message, on which grpc-js would throw an unhandled URIError', () => {
    const s = toGrpcStatus(new InvalidArgumentError('unknown load parameter "a\ud800b\udfff" (supported: config)'));
    expect(s.details).toBe('unknown load parameter "a\ufffdb\ufffd" (supported: config)');
    expect(() => encodeURI(s.details)).not.toThrow();
    expect(toGrpcStatus(new NotFoundError('model 😀 not found')).details).toBe('model 😀 not found');
  });

  it('escapes a field path grpc-js would refuse as metadata (non-ASCII, edge spaces) and bounds it', () => {
    const field = (f: string) => toGrpcStatus(new InvalidArgumentError('bad', { field: f })).metadata.get('invalid-argument-field')[0] as string;
    expect(field('parameters.é\n')).toBe('parameters.\\u{e9}\\u{a}');
    expect(field(' x ')).toBe('\\u{20}x\\u{20}');
    expect(field('parameters.\ud800')).toBe('parameters.\\u{d800}');
    expect(field(`parameters.${'k'.repeat(5_000)}`).length).toBeLessThan(MAX_FIELD_METADATA_CHARS + 50);
  });

  it('turns unknown errors into a generic INTERNAL and logs them with the same reference', () => {
    const { logger, lines } = captureLogger();
    const secretish = new Error('connection string mongodb://admin:hunter2@db failed');
    const s = toGrpcStatus(secretish, { logger, method: '/pkg.Svc/Get' });
    expect(s.code).toBe(Status.INTERNAL);
    expect(s.details).toMatch(/^internal error \(ref [0-9a-f]{12}\)$/);
    expect(s.details).not.toContain('hunter2');
    const ref = s.metadata.get(ERROR_REF_KEY)[0];
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { errorRef: string; rpc: string; err: { stack: string } };
    expect(line.errorRef).toBe(ref);
    expect(line.rpc).toBe('/pkg.Svc/Get');
    expect(line.err.stack).toContain('hunter2');
  });

  it('does not send the message of an InternalError or of a thrown non-error', () => {
    expect(toGrpcStatus(new InternalError('invariant broken: tenant secret abc')).details).not.toContain('abc');
    expect(toGrpcStatus('a string').code).toBe(Status.INTERNAL);
    expect(toGrpcStatus({ code: Status.NOT_FOUND, details: 'downstream' }).code).toBe(Status.INTERNAL);
  });
});

describe('fromGrpcError', () => {
  it.each(TABLE)('round-trips %s through its status', (err, _code) => {
    const s = toGrpcStatus(err);
    const back = fromGrpcError({ ...s, message: `${s.code} ${s.details}` });
    expect(back).toBeInstanceOf(err.constructor);
    expect(back.message).toBe(err.message);
  });

  it('restores retryAfterMs and field, and keeps the original as cause', () => {
    const original = { code: Status.RESOURCE_EXHAUSTED, details: 'quota', metadata: toGrpcStatus(new ResourceExhaustedError('quota', { retryAfterMs: 250 })).metadata };
    const e = fromGrpcError(original);
    expect(e).toBeInstanceOf(ResourceExhaustedError);
    expect((e as ResourceExhaustedError).retryAfterMs).toBe(250);
    expect(e.cause).toBe(original);
    const md = new Metadata();
    md.set('invalid-argument-field', 'input.text');
    const ia = fromGrpcError({ code: Status.INVALID_ARGUMENT, details: 'too long', metadata: md });
    expect((ia as InvalidArgumentError).field).toBe('input.text');
  });

  it('maps codes with no domain class to the nearest one', () => {
    expect(fromGrpcError({ code: Status.UNKNOWN, details: 'x' })).toBeInstanceOf(InternalError);
    expect(fromGrpcError({ code: Status.DATA_LOSS, details: 'x' })).toBeInstanceOf(InternalError);
    expect(fromGrpcError({ code: Status.OUT_OF_RANGE, details: 'x' })).toBeInstanceOf(InvalidArgumentError);
    expect(fromGrpcError(new Error('plain'))).toBeInstanceOf(InternalError);
  });
});
