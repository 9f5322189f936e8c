import { status } from '@grpc/grpc-js';
import type fc from 'fast-check';
import { expect, it } from 'vitest';
import {
  checkHostile,
  deadlineIn,
  hostileRequests,
  malformedRequests,
  oversizedBody,
  printHostileReport,
  sendCase,
  tenantHeaders,
  type HostileCase,
  type RawGrpcClient,
} from '../hostile.js';

/** One RPC under hostile input: how to encode its request, a valid one, and a generator of any. */
export interface HostileRpc {
  readonly name: string;
  readonly def: { readonly path: string; readonly requestSerialize: (request: never) => Buffer };
  /** A well-formed request: the malformed cases are mutations of its bytes. */
  readonly valid: unknown;
  readonly request: fc.Arbitrary<unknown>;
  /** A client-streaming RPC (the request is sent as one message of a stream). */
  readonly stream?: boolean | undefined;
}

export interface HostileSuiteOptions {
  /** Names the printed reports, e.g. `privacy`. */
  readonly service: string;
  readonly rpcs: readonly HostileRpc[];
  /** The raw client, once the suite's beforeAll made it. */
  readonly client: () => RawGrpcClient;
  /** A known-good call that throws unless the service answers it. */
  readonly knownGood: () => Promise<void>;
  /** The tenant the generated cases mostly carry. */
  readonly tenant: string;
  /** Tenant headers of the oversized message (default: the tenant; none for a service without tenants on that path). */
  readonly oversizedTenants?: readonly string[] | undefined;
  readonly numRuns: number;
  readonly malformedRuns: number;
  /**
   * Some generated cases must be refused for their content (INVALID_ARGUMENT): the generator gets
   * past the first checks rather than only bouncing off them.
   */
  readonly expectRefusals?: boolean | undefined;
  /** Applied to every request before it is encoded (e.g. to fill in ids known only once the suite started). */
  readonly prepare?: ((request: unknown) => unknown) | undefined;
}

/**
 * Registers, for each RPC, the three hostile-input tests every service has (issue 7): generated
 * field values, tenants and deadlines never crash it or answer INTERNAL or UNKNOWN; malformed
 * protobuf bytes never do either; a message over the receive limit is RESOURCE_EXHAUSTED. After
 * each, the known-good call still succeeds.
 */
export function hostileRpcSuite(o: HostileSuiteOptions): void {
  const prepare = o.prepare ?? ((request: unknown) => request);
  for (const rpc of o.rpcs) {
    const encode = (request: unknown) => rpc.def.requestSerialize(prepare(request) as never);
    const send = (c: HostileCase) => sendCase(o.client(), rpc.def.path, c, rpc.stream ?? false);

    it(`${rpc.name}: hostile field values, tenants and deadlines never crash it or answer INTERNAL`, { timeout: 60_000 }, async () => {
      const report = await checkHostile<HostileCase>({ arbitrary: hostileRequests(encode, rpc.request, o.tenant), send, good: o.knownGood, numRuns: o.numRuns });
      printHostileReport(`${o.service} ${rpc.name} hostile`, report);
      expect(report.runs).toBe(o.numRuns);
      if (o.expectRefusals) expect(report.codes.INVALID_ARGUMENT ?? 0).toBeGreaterThan(0);
    });

    it(`${rpc.name}: malformed protobuf bytes never answer INTERNAL`, { timeout: 60_000 }, async () => {
      const report = await checkHostile<HostileCase>({ arbitrary: malformedRequests(encode(rpc.valid), o.tenant), send, good: o.knownGood, numRuns: o.malformedRuns });
      printHostileReport(`${o.service} ${rpc.name} malformed`, report);
      expect(report.runs).toBe(o.malformedRuns);
    });

    it(`${rpc.name}: a message over the receive limit is RESOURCE_EXHAUSTED`, async () => {
      const client = o.client();
      const options = { metadata: tenantHeaders(o.oversizedTenants ?? [o.tenant]), deadline: deadlineIn(10_000) };
      const outcome = rpc.stream ? await client.stream(rpc.def.path, [oversizedBody()], options) : await client.unary(rpc.def.path, oversizedBody(), options);
      expect(outcome.code).toBe(status.RESOURCE_EXHAUSTED);
      await o.knownGood();
    });
  }
}
