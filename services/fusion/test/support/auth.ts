import { createHash } from 'node:crypto';
import { Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import type { AuthConfigInput } from '@aimass/auth';
import { TENANT_METADATA_KEY } from '@aimass/platform';
import { expect } from 'vitest';

/** The platform's internal token secret in these tests (shared by every service, as deployed). */
export const INTERNAL_SECRET = 'internal-token-secret-for-tests-0123456789abcdef';
/** The operator token; the services are configured with its hash only. */
export const OPERATOR_TOKEN = 'amo_operator-token-for-tests-0123456789abcdef';
export const OPERATOR_SHA256 = createHash('sha256').update(OPERATOR_TOKEN).digest('hex');

export function apiKeysAuth(overrides: AuthConfigInput = {}): AuthConfigInput {
  return { mode: 'api-keys', internalTokenSecret: INTERNAL_SECRET, operatorTokenSha256: OPERATOR_SHA256, ...overrides };
}

export interface AuthCallOpts {
  /** `authorization: Bearer <bearer>`; none when undefined. */
  readonly bearer?: string | undefined;
  /** `x-aimass-tenant`; none when undefined. */
  readonly tenant?: string | undefined;
  readonly deadlineMs?: number | undefined;
}

type AnyUnary = (request: unknown, metadata: Metadata, options: { deadline: Date }, callback: (err: ServiceError | null, res: unknown) => void) => unknown;

/** One unary call of any generated client by method name, with credentials; rejects with the ServiceError. */
export function rpc<Res = unknown>(client: Client, method: string, request: unknown, opts: AuthCallOpts = {}): Promise<Res> {
  const md = new Metadata();
  if (opts.bearer !== undefined) md.set('authorization', `Bearer ${opts.bearer}`);
  if (opts.tenant !== undefined) md.set(TENANT_METADATA_KEY, opts.tenant);
  const fn = (client as unknown as Record<string, AnyUnary>)[method];
  if (typeof fn !== 'function') throw new TypeError(`no method ${method}`);
  return new Promise((resolve, reject) => {
    fn.call(client, request, md, { deadline: new Date(Date.now() + (opts.deadlineMs ?? 10_000)) }, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

/** The status a call ended with (OK when it succeeded). */
export async function codeOf(promise: Promise<unknown>): Promise<{ code: status; details: string }> {
  try {
    await promise;
    return { code: status.OK, details: '' };
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, details: e.details };
  }
}

export async function expectCode(promise: Promise<unknown>, code: status, details?: RegExp): Promise<void> {
  const got = await codeOf(promise);
  expect(status[got.code], got.details).toBe(status[code]);
  if (details) expect(got.details).toMatch(details);
}
