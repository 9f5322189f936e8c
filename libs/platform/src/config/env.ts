import type { Node } from './schema-walk.js';
import { unwrap } from './schema-walk.js';

/** `maxReceiveMessageBytes` → `MAX_RECEIVE_MESSAGE_BYTES`. */
export function toEnvSegment(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
}

/**
 * The environment variable for a key path: the prefix, then each segment in UPPER_SNAKE_CASE,
 * segments joined by a double underscore. `grpc.maxReceiveMessageBytes` → `AIMASS_GRPC__MAX_RECEIVE_MESSAGE_BYTES`.
 */
export function envVarName(path: readonly string[], prefix = 'AIMASS'): string {
  return `${prefix}_${path.map(toEnvSegment).join('__')}`;
}

const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function tryJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/**
 * Turns an environment string into the type the schema expects where that is unambiguous:
 * numbers, booleans (true/false/1/0/yes/no/on/off), lists (comma-separated, or a JSON array),
 * mappings (JSON). Anything that does not convert is left as the string, so validation reports it
 * with the expected type.
 */
export function coerceEnvValue(raw: string, node: Node): unknown {
  const n = unwrap(node);
  const def = n._zod.def;
  const value = raw.trim();
  switch (def.type) {
    case 'number':
      return NUMBER.test(value) ? Number(value) : raw;
    case 'bigint':
      return /^[-+]?\d+$/.test(value) ? BigInt(value) : raw;
    case 'boolean': {
      const lower = value.toLowerCase();
      if (TRUE.has(lower)) return true;
      if (FALSE.has(lower)) return false;
      return raw;
    }
    case 'literal': {
      const first = def.values?.[0];
      if (typeof first === 'number' && NUMBER.test(value)) return Number(value);
      if (typeof first === 'boolean') return coerceEnvValue(raw, { _zod: { def: { type: 'boolean' } } });
      return raw;
    }
    case 'array':
    case 'set':
    case 'tuple': {
      if (value.startsWith('[')) return tryJson(value);
      const element = def.element;
      const items = value.length === 0 ? [] : value.split(',').map((s) => s.trim());
      return element ? items.map((item) => coerceEnvValue(item, element)) : items;
    }
    case 'object':
    case 'record':
    case 'map':
      return value.startsWith('{') ? tryJson(value) : raw;
    case 'union': {
      for (const option of def.options ?? []) {
        const candidate = coerceEnvValue(raw, option);
        const parsed = (option as unknown as { safeParse?: (v: unknown) => { success: boolean } }).safeParse?.(candidate);
        if (parsed?.success) return candidate;
      }
      return raw;
    }
    default:
      return raw;
  }
}
