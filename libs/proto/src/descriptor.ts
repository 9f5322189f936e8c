import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import {
  loadFileDescriptorSetFromBuffer,
  type AnyDefinition,
  type Options,
  type PackageDefinition,
} from '@grpc/proto-loader';

const FILE = 'descriptor-set.binpb';

// The build copies the descriptor set next to dist/index.js; when running from src (tests,
// the @aimass/source condition) it is already next to this module. The ../src fallback covers a
// dist built by a bare `tsc -b` that skipped the copy step.
const CANDIDATES = [new URL(`./${FILE}`, import.meta.url), new URL(`../src/${FILE}`, import.meta.url)];

let cached: Buffer | undefined;

/**
 * The FileDescriptorSet of every contract in proto/ and its imports (google/protobuf/*), with
 * comments: what server reflection serves and what a client that knows only the .proto sees.
 */
export function loadDescriptorSet(): Buffer {
  if (cached) return cached;
  for (const url of CANDIDATES) {
    const path = fileURLToPath(url);
    if (existsSync(path)) {
      cached = readFileSync(path);
      return cached;
    }
  }
  throw new Error(`${FILE} not found next to ${fileURLToPath(import.meta.url)}; run npm run proto:gen and rebuild`);
}

/** The encoded FileDescriptorProtos of a FileDescriptorSet (`repeated FileDescriptorProto file = 1`). */
function splitFiles(set: Uint8Array): Buffer[] {
  const reader = new BinaryReader(set);
  const files: Buffer[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(Buffer.from(reader.bytes()));
    else reader.skip(wireType);
  }
  return files;
}

/**
 * Loader options matching what a generic gRPC client (grpcurl, a proto-loader client) uses:
 * proto field names, 64-bit values and enums as strings, defaults filled in, oneof names set.
 */
export const DEFAULT_LOADER_OPTIONS: Readonly<Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

/**
 * A @grpc/proto-loader package definition of every contract, built from the descriptor set.
 * Pass it to `new ReflectionService(...)` (@grpc/reflection) or to `grpc.loadPackageDefinition`.
 *
 * Every type carries the descriptor set's original files as `fileDescriptorProtos`, so
 * reflection serves the real files with their imports and comments. (protobufjs re-derives
 * files from its merged namespace, folding each package into one file without imports, which
 * reflection clients such as grpcurl cannot resolve.)
 *
 * Note: protobufjs reads a descriptor's map fields as repeated `{ key, value }` entry messages
 * (the same bytes on the wire), so a client built from this definition writes and reads maps
 * as entry lists; a client built from the .proto text sees plain objects.
 */
export function packageDefinition(options: Options = DEFAULT_LOADER_OPTIONS): PackageDefinition {
  const set = loadDescriptorSet();
  const files = splitFiles(set);
  const loaded = loadFileDescriptorSetFromBuffer(set, options);
  const definition: PackageDefinition = {};
  for (const [name, value] of Object.entries(loaded)) {
    definition[name] = 'fileDescriptorProtos' in value ? ({ ...value, fileDescriptorProtos: files } as AnyDefinition) : value;
  }
  return definition;
}
