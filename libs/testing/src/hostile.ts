import { Client, Metadata, credentials, status as Status, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';

/**
 * Statuses that blame the caller (or its deadline, or its quota): what a service may answer to a
 * malformed request. ABORTED and ALREADY_EXISTS are the documented answers to a stale
 * `expected_version` or a repeated create, which generated requests hit too. INTERNAL and UNKNOWN
 * mean the service broke on the input; UNAVAILABLE would tell the caller to retry a request that
 * can never succeed.
 */
export const CLIENT_ERROR_CODES: ReadonlySet<Status> = new Set([
  Status.INVALID_ARGUMENT,
  Status.ABORTED,
  Status.ALREADY_EXISTS,
  Status.NOT_FOUND,
  Status.FAILED_PRECONDITION,
  Status.OUT_OF_RANGE,
  Status.RESOURCE_EXHAUSTED,
  Status.DEADLINE_EXCEEDED,
  Status.UNAUTHENTICATED,
  Status.PERMISSION_DENIED,
]);

export interface RawOutcome {
  readonly code: Status;
  readonly details: string;
  /** Response messages received (one for a unary OK). */
  readonly responses: number;
}

export interface RawCallOptions {
  readonly metadata?: Metadata | undefined;
  /** Absolute deadline (ms since the epoch or a Date); Infinity sends none. */
  readonly deadline: number | Date;
}

const passThrough = (b: Buffer): Buffer => b;

/**
 * A gRPC client that sends request bytes as given (no serializer between the test and the wire),
 * so a test can send what no generated client would: truncated messages, wrong wire types, string
 * fields holding invalid UTF-8.
 */
export class RawGrpcClient {
  readonly #client: Client;

  constructor(address: string) {
    // No transparent retries: a call that failed on the connection must show as failed, not wait out its deadline.
    this.#client = new Client(address, credentials.createInsecure(), { 'grpc.enable_retries': 0 });
  }

  unary(path: string, body: Uint8Array, options: RawCallOptions): Promise<RawOutcome> {
    return new Promise((resolve) => {
      this.#client.makeUnaryRequest(path, passThrough, passThrough, Buffer.from(body), options.metadata ?? new Metadata(), { deadline: options.deadline }, (err: ServiceError | null) =>
        resolve(err ? { code: err.code, details: err.details, responses: 0 } : { code: Status.OK, details: '', responses: 1 }),
      );
    });
  }

  /** A client- or bidi-streaming call: writes every body, half-closes, counts the responses until the status. */
  stream(path: string, bodies: readonly Uint8Array[], options: RawCallOptions): Promise<RawOutcome> {
    return new Promise((resolve) => {
      const call = this.#client.makeBidiStreamRequest(path, passThrough, passThrough, options.metadata ?? new Metadata(), { deadline: options.deadline });
      let responses = 0;
      let error: ServiceError | undefined;
      call.on('data', () => void responses++);
      call.on('error', (err: ServiceError) => {
        error = err;
      });
      call.on('status', (s: { code: Status; details: string }) => resolve({ code: error?.code ?? s.code, details: error?.details ?? s.details, responses }));
      for (const body of bodies) call.write(Buffer.from(body));
      call.end();
    });
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * Put this in a string field of a message, encode it, then `withInvalidUtf8` swaps its bytes for
 * invalid UTF-8 of the same length, so the field's length prefix stays right.
 */
export const INVALID_UTF8_MARKER = '~~bad-utf8-here~~';

// Each one is invalid on its own: a lone continuation byte, bytes never used in UTF-8, an
// overlong encoding, a UTF-16 surrogate, a code point above U+10FFFF, a truncated sequence.
const INVALID_UTF8 = Buffer.from([0x80, 0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0xe2, 0x28, 0xa1, 0xc3, 0xf8]);

/** `encoded` with every occurrence of INVALID_UTF8_MARKER replaced by invalid UTF-8 bytes. */
export function withInvalidUtf8(encoded: Uint8Array): Uint8Array {
  const out = Buffer.from(encoded);
  const marker = Buffer.from(INVALID_UTF8_MARKER, 'utf8');
  for (let at = out.indexOf(marker); at >= 0; at = out.indexOf(marker, at + marker.length)) {
    for (let i = 0; i < marker.length; i++) out[at + i] = INVALID_UTF8[i % INVALID_UTF8.length]!;
  }
  return out;
}

/** True when the marker is somewhere in the encoded bytes (the case then tests invalid UTF-8). */
export function hasInvalidUtf8Marker(encoded: Uint8Array): boolean {
  return Buffer.from(encoded).includes(Buffer.from(INVALID_UTF8_MARKER, 'utf8'));
}

export interface HostileStringOptions {
  /** Lengths (in characters) of the long strings generated, e.g. just over a limit. */
  readonly longLengths?: readonly number[];
}

/**
 * Strings a careless or hostile caller sends: empty, blank, control and format characters, lone
 * surrogates, subject and path metacharacters, anything in Unicode, the invalid-UTF-8 marker, and
 * long strings (ASCII and multi-byte) at the given lengths.
 */
export function hostileString(options: HostileStringOptions = {}): fc.Arbitrary<string> {
  const longLengths = options.longLengths ?? [257, 1025, 70_000];
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom('', ' ', '\t\r\n', '\u0000', '\u0000abc', '\ud800', 'a\udfffb', '\ufeff', '\u202e', '😀', 'acme.*', 'a.>', '../../etc/passwd', '%s%n%x', "'; drop table x; --", '\\', 'null', 'NaN', '-1'),
    },
    { weight: 2, arbitrary: fc.constant(INVALID_UTF8_MARKER) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom(...longLengths), fc.constantFrom('a', 'é', '😀', '\u0000')).map(([n, c]) => c.repeat(n)),
    },
  );
}

/** Values for a double field that break arithmetic: NaN, ±Infinity, -0, values beyond float32, subnormals, and any double. */
export function hostileNumber(): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, Number.MAX_VALUE, -Number.MAX_VALUE, 3.5e38, -3.5e38, 1e-45, Number.MIN_VALUE, 1e300),
    fc.double(),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -10, max: 10 }),
  );
}

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * What a float (float32) field can carry on the wire: NaN, ±Infinity, -0, the largest and
 * smallest float32 values, and any float32. (Larger doubles cannot be encoded as float32.)
 */
export function hostileFloat32(): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, FLOAT32_MAX, -FLOAT32_MAX, 1.401298464324817e-45, 1e30),
    fc.float(),
    fc.float({ noNaN: true, noDefaultInfinity: true, min: -10, max: 10 }),
  );
}

/** Values for an int32 field (enums included): unknown enum numbers, negatives, the extremes. */
export function hostileInt32(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 99, -1, 2 ** 31 - 1, -(2 ** 31)), fc.integer());
}

/** Values for a uint32 field: 0, the maximum, anything in range. */
export function hostileUint32(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(0, 1, 2, 7, 2 ** 16, 2 ** 31, 2 ** 32 - 1), fc.nat());
}

/**
 * Items of a repeated field: none, a few hostile ones, or far too many (`hugeCounts` copies of
 * `filler`, or of one generated item without it: keep the filler small, or a huge array of huge
 * items costs the test more than the service).
 */
export function hostileArray<T>(item: fc.Arbitrary<T>, options: { maxLength?: number; hugeCounts?: readonly number[]; filler?: T } = {}): fc.Arbitrary<T[]> {
  const huge = options.hugeCounts ?? [1025];
  const one = options.filler !== undefined ? fc.constant(options.filler) : item;
  return fc.oneof(
    { weight: 4, arbitrary: fc.array(item, { maxLength: options.maxLength ?? 4 }) },
    { weight: 1, arbitrary: fc.tuple(one, fc.constantFrom(...huge)).map(([x, n]) => Array.from({ length: n }, () => x)) },
  );
}

/**
 * Call deadlines, in ms from now: mostly an ordinary 10 s, sometimes absurd: already passed (0 ms,
 * negative), 1 ms, or 1e12 ms (31 years).
 */
export function hostileDeadlineMs(): fc.Arbitrary<number> {
  return fc.oneof({ weight: 6, arbitrary: fc.constant(10_000) }, { weight: 1, arbitrary: fc.constantFrom(0, -5_000, 1, 1e12) });
}

export const TENANT_HEADER = 'x-aimass-tenant';

/**
 * The tenant metadata: mostly `valid`, sometimes missing, repeated or malformed (upper case,
 * subject wildcards, too long, empty).
 */
export function hostileTenant(valid: string): fc.Arbitrary<readonly string[]> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant([valid]) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.constant([]),
        fc.constant([valid, 'other']),
        fc.constantFrom(['ACME'], ['acme.*'], ['a>'], ['-x'], ['a'.repeat(64)], ['']),
        // Any printable ASCII, spaces at either end included (the receiving HTTP/2 stack drops
        // such a header under RFC 9113, so the service sees none). Nothing else: grpc-js refuses
        // to send a text value outside printable ASCII, which would test the client, not the service.
        fc.stringMatching(/^[ -~]{0,70}$/).map((s) => [s]),
      ),
    },
  );
}

/** Metadata carrying `tenants` as the tenant header (none when empty). */
export function tenantHeaders(tenants: readonly string[]): Metadata {
  const md = new Metadata();
  for (const t of tenants) md.add(TENANT_HEADER, t);
  return md;
}

export interface HostileRunOptions<T> {
  readonly arbitrary: fc.Arbitrary<T>;
  /** Sends one generated case and reports how the service answered. */
  readonly send: (value: T) => Promise<RawOutcome>;
  /** A known-good request; throws when the service does not answer it. */
  readonly good: () => Promise<void>;
  readonly numRuns: number;
  /** Runs between two known-good requests (default 25). */
  readonly goodEvery?: number;
  readonly seed?: number | undefined;
}

export interface HostileRunReport {
  readonly runs: number;
  /** How many cases ended with each status (by name). */
  readonly codes: Record<string, number>;
  readonly ms: number;
}

/**
 * Runs a fast-check property over a live service: every generated case must end in OK or a
 * client-error status, and the known-good request must keep succeeding (every `goodEvery` runs and
 * at the end), so a crashed or wedged process fails the run.
 */
export async function checkHostile<T>(options: HostileRunOptions<T>): Promise<HostileRunReport> {
  const started = performance.now();
  const codes: Record<string, number> = {};
  const every = options.goodEvery ?? 25;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(options.arbitrary, async (value) => {
      const outcome = await options.send(value);
      if (outcome.code !== Status.OK && !CLIENT_ERROR_CODES.has(outcome.code)) {
        throw new Error(`answered ${Status[outcome.code]} (${outcome.details}): expected OK or a client-error status`);
      }
      runs++;
      const name = Status[outcome.code] ?? String(outcome.code);
      codes[name] = (codes[name] ?? 0) + 1;
      if (runs % every === 0) await options.good();
    }),
    { numRuns: options.numRuns, ...(options.seed !== undefined ? { seed: options.seed } : {}), endOnFailure: true },
  );
  await options.good();
  return { runs, codes, ms: Math.round(performance.now() - started) };
}

/**
 * Prints a run's report (`<label>: {runs, codes, ms}`) to the test's stdout, so a run shows how the
 * generated cases ended (how many reached the content checks), not only that none broke the service.
 */
export function printHostileReport(label: string, report: HostileRunReport): void {
  process.stdout.write(`${label}: ${JSON.stringify(report)}\n`);
}

/** A varint field `field` holding 2^64 - 1: beyond what any 32-bit or safe-integer 64-bit field decodes to. */
function hugeVarintField(field: number): Buffer {
  return Buffer.from([(field << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
}

/**
 * Bytes that are not the message they claim to be: random bytes, and mutations of a well-formed
 * request (`valid`): cut short, a byte changed, a length prefix made to lie, a field of the wrong
 * wire type, a varint too large for its field appended.
 */
export function malformedBytes(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  const base = Buffer.from(valid);
  const at = fc.nat({ max: Math.max(0, base.length - 1) });
  return fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    at.map((n) => base.subarray(0, n)),
    fc.tuple(at, fc.integer({ min: 1, max: 255 })).map(([n, x]) => {
      const out = Buffer.from(base);
      if (out.length > 0) out[n] = out[n]! ^ x;
      return out;
    }),
    // A length-delimited field claiming more bytes than follow.
    fc.integer({ min: 1, max: 15 }).map((field) => Buffer.concat([base, Buffer.from([(field << 3) | 2, 0x7f, 0x01])])),
    // Wire type 5 (fixed32) or 1 (fixed64) for fields that are strings or messages.
    fc.tuple(fc.integer({ min: 1, max: 15 }), fc.constantFrom(1, 5)).map(([field, wire]) => Buffer.concat([base, Buffer.from([(field << 3) | wire]), Buffer.alloc(wire === 1 ? 8 : 4, 0xff)])),
    fc.integer({ min: 1, max: 15 }).map((field) => Buffer.concat([base, hugeVarintField(field)])),
    // Wire types 6 and 7 do not exist.
    fc.constantFrom(6, 7).map((wire) => Buffer.concat([base, Buffer.from([(1 << 3) | wire, 0x00])])),
  );
}

/** A deadline `ms` from now as grpc-js takes it. */
export function deadlineIn(ms: number): number {
  return Date.now() + ms;
}

/** A request body larger than `maxReceiveMessageBytes` (4 MiB by default): one bytes field 1, filled. */
export function oversizedBody(bytes = 4 * 1024 * 1024 + 1024): Uint8Array {
  // Field 1, wire type 2 (length-delimited), varint length, then the bytes: a well-formed message, only too big.
  const len: number[] = [];
  for (let n = bytes; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n % 128) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), Buffer.alloc(bytes, 0x61)]);
}

/** One generated call: the request bytes, the tenant header values, the deadline. */
export interface HostileCase {
  readonly body: Uint8Array;
  readonly tenants: readonly string[];
  readonly deadlineMs: number;
}

/**
 * Calls of one RPC with generated requests: `request` encoded by `encode` (invalid-UTF-8 markers
 * then swapped in), under hostile tenant metadata (mostly `tenant`) and deadlines.
 */
export function hostileRequests<Req>(encode: (req: Req) => Uint8Array, request: fc.Arbitrary<Req>, tenant: string): fc.Arbitrary<HostileCase> {
  return fc.record({ body: request.map((r) => withInvalidUtf8(encode(r))), tenants: hostileTenant(tenant), deadlineMs: hostileDeadlineMs() });
}

/** Calls of one RPC whose bytes are malformed versions of `valid`, with a good tenant and deadline. */
export function malformedRequests(valid: Uint8Array, tenant: string): fc.Arbitrary<HostileCase> {
  return fc.record({ body: malformedBytes(valid), tenants: fc.constant([tenant]), deadlineMs: fc.constant(10_000) });
}

/** Sends one case, unary or (`stream`) as a one-message stream. */
export function sendCase(client: RawGrpcClient, path: string, c: HostileCase, stream = false): Promise<RawOutcome> {
  const options = { metadata: tenantHeaders(c.tenants), deadline: deadlineIn(c.deadlineMs) };
  return stream ? client.stream(path, [c.body], options) : client.unary(path, c.body, options);
}
