import type { z } from 'zod';

// Just enough of zod 4's internal definition shape to walk a schema; `_zod.def` is the
// documented way to introspect schemas in zod 4.
interface Def {
  type: string;
  innerType?: Node;
  shape?: Record<string, Node>;
  catchall?: Node;
  element?: Node;
  options?: readonly Node[];
  in?: Node;
  out?: Node;
  left?: Node;
  right?: Node;
  values?: readonly unknown[];
  getter?: () => Node;
}
export interface Node {
  _zod: { def: Def };
}

export const asNode = (schema: z.ZodType): Node => schema as unknown as Node;

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional', 'success']);

/** The schema that decides the shape of the input, with optional/default/… wrappers removed. */
export function unwrap(node: Node): Node {
  let n = node;
  for (let i = 0; i < 32; i++) {
    const def = n._zod.def;
    if (WRAPPERS.has(def.type) && def.innerType) n = def.innerType;
    else if (def.type === 'lazy' && def.getter) n = def.getter();
    // For transforms the input side (`in`) describes what config must contain; for preprocess
    // the `in` side is the transform itself and the target schema is `out`.
    else if (def.type === 'pipe' && def.in && def.out) n = def.in._zod.def.type === 'transform' ? def.out : def.in;
    else return n;
  }
  return n;
}

export interface ObjectShape {
  shape: Record<string, Node>;
  /** Unknown keys are allowed here (z.looseObject or a catchall). */
  open: boolean;
}

/** The object shapes an input at this node may take: one for an object, several for unions. */
export function objectShapes(node: Node): ObjectShape[] {
  const n = unwrap(node);
  const def = n._zod.def;
  if (def.type === 'object' && def.shape) {
    const catchType = def.catchall ? def.catchall._zod.def.type : undefined;
    return [{ shape: def.shape, open: catchType !== undefined && catchType !== 'never' }];
  }
  if (def.type === 'union' && def.options) {
    const shapes = def.options.map(objectShapes);
    return shapes.every((s) => s.length > 0) ? shapes.flat() : [];
  }
  if (def.type === 'intersection' && def.left && def.right) return [...objectShapes(def.left), ...objectShapes(def.right)];
  return [];
}

export interface Leaf {
  path: string[];
  node: Node;
}

/** Every settable leaf under an object schema (records, arrays and scalars are leaves). */
export function leaves(node: Node, prefix: string[] = []): Leaf[] {
  const shapes = objectShapes(node);
  if (shapes.length === 0) return prefix.length > 0 ? [{ path: prefix, node }] : [];
  const seen = new Map<string, Leaf>();
  for (const { shape } of shapes) {
    for (const [key, child] of Object.entries(shape)) {
      for (const leaf of leaves(child, [...prefix, key])) {
        const id = leaf.path.join('.');
        if (!seen.has(id)) seen.set(id, leaf);
      }
    }
  }
  return [...seen.values()];
}

/** The schema for `path` under `node`, if the path is known to it. */
export function childAt(node: Node, key: string): Node | undefined {
  for (const { shape } of objectShapes(node)) {
    const child = shape[key];
    if (child) return child;
  }
  return undefined;
}
