import { Pseudonymizer } from '@aimass/platform';
import { seededUniform, ZipfDistribution } from './zipf.js';

/**
 * How a user's rank (1 = the most active) becomes the string a request carries: a user id as a
 * backend sends it to fusion (`<prefix><rank>`), or the pseudonym fusion would make of that id
 * (what personal-model sees), with the same root secret and tenant as the fusion under test.
 */
export type UserKeySpec =
  | { readonly kind: 'user-id'; readonly prefix: string }
  | { readonly kind: 'pseudonym'; readonly prefix: string; readonly rootSecret: string; readonly tenant: string };

/** Which user each request is for: Zipf over ranks 1..count (s = exponent), or ranks 1..count in turn. */
export type UserPick =
  | { readonly kind: 'zipf'; readonly count: number; readonly exponent: number; readonly seed: number }
  | { readonly kind: 'cycle'; readonly count: number };

/**
 * Requests whose payloads are templates without the user: each request gets one user, written
 * as protobuf string field `field` of the message, or of the one embedded message `within`
 * (ScoreRequest.items[0].user_pseudonym is field 2 within field 1). Protobuf lets a field come
 * in any order, so the field is put in front of the template's bytes: nothing is re-encoded.
 */
export interface UserSelection {
  readonly key: UserKeySpec;
  readonly pick: UserPick;
  readonly field: number;
  readonly within?: number | undefined;
}

/** The user id of a rank, as the bench's simulated backends send it. */
export function userIdOf(prefix: string, rank: number): string {
  return `${prefix}${rank}`;
}

/** The key string of `rank` under `spec`. */
export function userKeyOf(spec: UserKeySpec, rank: number, pseudonymizer?: Pseudonymizer): string {
  const id = userIdOf(spec.prefix, rank);
  if (spec.kind === 'user-id') return id;
  return (pseudonymizer ?? new Pseudonymizer({ rootSecret: spec.rootSecret })).pseudonymize(spec.tenant, id);
}

function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

function writeVarint(out: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

/**
 * `template` with a length-delimited field `field` = `value` in front, optionally all wrapped as
 * field `within` (an embedded message) of the outer message.
 */
export function prependBytesField(template: Uint8Array, field: number, value: Uint8Array, within?: number): Uint8Array {
  const tag = field * 8 + 2;
  const inner = varintLength(tag) + varintLength(value.length) + value.length + template.length;
  const outerTag = within === undefined ? 0 : within * 8 + 2;
  const total = within === undefined ? inner : varintLength(outerTag) + varintLength(inner) + inner;
  const out = new Uint8Array(total);
  let at = 0;
  if (within !== undefined) {
    at = writeVarint(out, at, outerTag);
    at = writeVarint(out, at, inner);
  }
  at = writeVarint(out, at, tag);
  at = writeVarint(out, at, value.length);
  out.set(value, at);
  out.set(template, at + value.length);
  return out;
}

// A million pseudonyms take a few seconds of HMACs: the load process keeps the last table it made.
const tables = new Map<string, { bytes: Buffer; width: number }>();

function keyTable(spec: UserKeySpec, count: number): { bytes: Buffer; width: number } | undefined {
  if (spec.kind !== 'pseudonym') return undefined;
  const id = JSON.stringify([spec, count]);
  let table = tables.get(id);
  if (table === undefined) {
    const pseudonymizer = new Pseudonymizer({ rootSecret: spec.rootSecret });
    const width = userKeyOf(spec, 1, pseudonymizer).length;
    const bytes = Buffer.alloc(count * width);
    for (let rank = 1; rank <= count; rank++) bytes.write(userKeyOf(spec, rank, pseudonymizer), (rank - 1) * width, 'latin1');
    tables.clear();
    table = { bytes, width };
    tables.set(id, table);
  }
  return table;
}

/** Draws the user of each request and writes it into the request's template. */
export class UserRequests {
  private readonly next: () => number;
  private readonly table: { bytes: Buffer; width: number } | undefined;
  private readonly encoder = new TextEncoder();

  constructor(private readonly selection: UserSelection) {
    const { pick } = selection;
    if (pick.kind === 'zipf') {
      const zipf = new ZipfDistribution(pick.count, pick.exponent);
      const random = seededUniform(pick.seed);
      this.next = () => zipf.sample(random);
    } else {
      let i = 0;
      this.next = () => (i++ % pick.count) + 1;
    }
    this.table = keyTable(selection.key, pick.count);
  }

  /** The key bytes of `rank`. */
  keyBytes(rank: number): Uint8Array {
    if (this.table === undefined) return this.encoder.encode(userKeyOf(this.selection.key, rank));
    const { bytes, width } = this.table;
    return bytes.subarray((rank - 1) * width, rank * width);
  }

  /** The next request: `template` for the next drawn user. */
  request(template: Uint8Array): Uint8Array {
    return prependBytesField(template, this.selection.field, this.keyBytes(this.next()), this.selection.within);
  }
}
