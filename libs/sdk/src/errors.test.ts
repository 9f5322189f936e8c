import { Metadata, status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AiMassError, InvalidArgumentError, toAiMassError, type ResourceExhaustedError, type UnavailableError } from './errors.js';

describe('toAiMassError', () => {
  it('reads the field, retry-after and error reference from the trailers', () => {
    const md = new Metadata();
    md.set('invalid-argument-field', 'items[3].input');
    const ia = toAiMassError({ code: Status.INVALID_ARGUMENT, details: 'empty input', metadata: md });
    expect(ia).toBeInstanceOf(InvalidArgumentError);
    expect((ia as InvalidArgumentError).field).toBe('items[3].input');
    expect(ia.metadata).toEqual({ 'invalid-argument-field': 'items[3].input' });

    const rmd = new Metadata();
    rmd.set('retry-after-ms', '250');
    expect((toAiMassError({ code: Status.RESOURCE_EXHAUSTED, details: 'quota', metadata: rmd }) as ResourceExhaustedError).retryAfterMs).toBe(250);
    expect((toAiMassError({ code: Status.UNAVAILABLE, details: 'x', metadata: rmd }) as UnavailableError).retryAfterMs).toBe(250);

    const bad = new Metadata();
    bad.set('retry-after-ms', 'soon');
    expect((toAiMassError({ code: Status.UNAVAILABLE, details: 'x', metadata: bad }) as UnavailableError).retryAfterMs).toBeUndefined();
  });

  it('keeps codes without a class as a plain AiMassError with their name', () => {
    const e = toAiMassError({ code: Status.ABORTED, details: 'version conflict' });
    expect(e.constructor).toBe(AiMassError);
    expect(e.code).toBe('ABORTED');
    expect(e.message).toBe('ABORTED: version conflict');
    expect(toAiMassError({ code: Status.OUT_OF_RANGE, details: 'k too big' })).toBeInstanceOf(InvalidArgumentError);
  });

  it('wraps values that are not gRPC errors as UNKNOWN, keeping them as the cause', () => {
    const original = new Error('socket hang up');
    const e = toAiMassError(original);
    expect(e.code).toBe('UNKNOWN');
    expect(e.cause).toBe(original);
    expect(toAiMassError(e)).toBe(e);
  });
});
