import { describe, expect, it } from 'vitest';
import { isExemptPath, rpcSpanName, splitPath } from './rpc-names.js';

describe('rpc names', () => {
  it('splits a method path into service and method', () => {
    expect(splitPath('/aimass.fusion.v1.Fusion/Predict')).toEqual({ service: 'aimass.fusion.v1.Fusion', method: 'Predict' });
    expect(rpcSpanName('/aimass.fusion.v1.Fusion/Predict')).toBe('aimass.fusion.v1.Fusion/Predict');
  });

  it('exempts health and reflection only', () => {
    expect(isExemptPath('/grpc.health.v1.Health/Check')).toBe(true);
    expect(isExemptPath('/grpc.health.v1.Health/Watch')).toBe(true);
    expect(isExemptPath('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo')).toBe(true);
    expect(isExemptPath('/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo')).toBe(true);
    expect(isExemptPath('/aimass.fusion.v1.Fusion/Predict')).toBe(false);
    expect(isExemptPath('/grpc.health.v1.HealthX/Check')).toBe(false);
  });
});
