import type { Collection, DocumentData, DocumentStore, WriteOp } from '@aimass/storage';

/** One document a write is about to put, as a hold's `match` sees it. */
export interface PendingPut {
  readonly collection: string;
  readonly tenant: string;
  readonly id: string;
}

/** A write held before it reaches the store. */
export interface HeldWrite {
  /** Resolves once the write arrived and is held: whatever the caller checked before it is checked. */
  readonly reached: Promise<void>;
  /** Lets it go on to the store. */
  release(): void;
}

interface Hold {
  readonly match: (puts: readonly PendingPut[]) => boolean;
  readonly arrived: () => void;
  readonly released: Promise<void>;
}

/**
 * Holds chosen writes of a real DocumentStore before they reach it, so a test can run something
 * else (a tenant deletion) between a caller's checks and its write, deterministically. Everything
 * else goes straight through: the store underneath is the real one, and so is every write.
 */
export class WriteGate {
  readonly #holds: Hold[] = [];

  /** Holds the next write (a `writeAtomic` batch or a collection's `put`) whose puts `match`. */
  hold(match: (puts: readonly PendingPut[]) => boolean): HeldWrite {
    let arrived!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#holds.push({ match, arrived, released });
    return { reached, release };
  }

  /** The store a service is given: `store` with the holds applied. */
  readonly wrap = (store: DocumentStore): DocumentStore => {
    return {
      kind: store.kind,
      maxDocumentBytes: store.maxDocumentBytes,
      collection: async <T extends DocumentData>(spec: Parameters<DocumentStore['collection']>[0]) => this.#collection(await store.collection<T>(spec)),
      writeAtomic: async (ops: readonly WriteOp[]) => {
        await this.#pass(ops.flatMap((op) => (op.type === 'put' ? [{ collection: op.collection.name, tenant: op.tenant, id: op.id }] : [])));
        return store.writeAtomic(ops);
      },
      health: () => store.health(),
      close: () => store.close(),
    };
  };

  #collection<T extends DocumentData>(c: Collection<T>): Collection<T> {
    // The ops a collection builds must keep naming the real collection (the store checks that).
    return new Proxy(c, {
      get: (target, prop) => {
        if (prop === 'put') {
          return async (tenant: string, id: string, data: T, opts?: Parameters<Collection<T>['put']>[3]) => {
            await this.#pass([{ collection: target.name, tenant, id }]);
            return target.put(tenant, id, data, opts);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  async #pass(puts: readonly PendingPut[]): Promise<void> {
    const i = this.#holds.findIndex((h) => h.match(puts));
    if (i < 0) return;
    const [hold] = this.#holds.splice(i, 1);
    hold!.arrived();
    await hold!.released;
  }
}

/** A match for writes that put a document of `collection` in `tenant`. */
export function putsInto(collection: string, tenant: string): (puts: readonly PendingPut[]) => boolean {
  return (puts) => puts.some((p) => p.collection === collection && p.tenant === tenant);
}
