import { SERVICE_NAMES, inference, v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { ACCESS_TABLE, accessFor, isExemptMethod, parseScope, scopeFromProto, scopeToProto, SCOPES } from './scopes.js';

const DEFINITIONS = [
  v1.InferenceServiceService,
  v1.PrivacyServiceService,
  v1.DataKeyServiceService,
  v1.TenantAdminServiceService,
  v1.CredentialServiceService,
  v1.UpdaterAdminServiceService,
  v1.GeneralModelServiceService,
  v1.PersonalModelServiceService,
  inference.GRPCInferenceServiceService,
];

describe('the access table', () => {
  it('has a rule for every method of every service the platform serves, and nothing else', () => {
    const paths = DEFINITIONS.flatMap((d) => Object.values(d).map((m) => m.path));
    for (const path of paths) expect(accessFor(path), path).toBeDefined();
    const listed = Object.entries(ACCESS_TABLE).flatMap(([service, methods]) => Object.keys(methods).map((m) => `/${service}/${m}`));
    expect(listed.sort()).toEqual([...paths].sort());
    expect(Object.keys(ACCESS_TABLE).sort()).toEqual(Object.values(SERVICE_NAMES).sort());
  });

  it('follows the proto comments: predict, feedback, consent, admin, internal', () => {
    expect(accessFor('/aimass.v1.InferenceService/Predict')).toEqual({ scope: 'predict' });
    expect(accessFor('/aimass.v1.InferenceService/PredictStream')).toEqual({ scope: 'predict' });
    expect(accessFor('/aimass.v1.InferenceService/Feedback')).toEqual({ scope: 'feedback' });
    expect(accessFor('/aimass.v1.PrivacyService/Erase')).toEqual({ scope: 'consent' });
    expect(accessFor('/aimass.v1.PrivacyService/GetConsent')).toEqual({ scope: 'consent', service: true });
    expect(accessFor('/aimass.v1.TenantAdminService/CreateTenant')).toEqual({ scope: 'admin', operator: true });
    expect(accessFor('/aimass.v1.UpdaterAdminService/RefitAll')).toEqual({ scope: 'admin' });
    for (const internal of ['/aimass.v1.PersonalModelService/Score', '/aimass.v1.DataKeyService/GetDataKey', '/aimass.v1.CredentialService/LookupApiKey', '/aimass.v1.UpdaterAdminService/ExportFeedback']) {
      expect(accessFor(internal), internal).toEqual({ service: true });
    }
    expect(accessFor('/aimass.v1.InferenceService/Unknown')).toBeUndefined();
    expect(accessFor('nonsense')).toBeUndefined();
  });

  it('exempts health and reflection only', () => {
    expect(isExemptMethod('/grpc.health.v1.Health/Check')).toBe(true);
    expect(isExemptMethod('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo')).toBe(true);
    expect(isExemptMethod('/aimass.v1.InferenceService/Predict')).toBe(false);
  });
});

describe('scopes', () => {
  it('map to and from the proto enum and parse from names', () => {
    for (const s of SCOPES) expect(scopeFromProto(scopeToProto(s))).toBe(s);
    expect(scopeFromProto(v1.ApiKeyScope.API_KEY_SCOPE_UNSPECIFIED)).toBeUndefined();
    expect(parseScope('API_KEY_SCOPE_ADMIN')).toBe('admin');
    expect(parseScope(' Predict ')).toBe('predict');
    expect(parseScope('write')).toBeUndefined();
  });
});
