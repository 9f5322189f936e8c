/**
 * Group commit for the updater's atomic writes. Every commit costs the store far more than the
 * operations in it (SQLite: the write lock, the WAL frames of every page touched, and now and
 * then a checkpoint, all while the event loop waits), and under a backlog the intake's 16
 * partitions and the applier's users reach their writes at about the same time. So the writes
 * asked for within one turn of the event loop are committed together, as one `writeAtomic`.
 *
 * To each caller this is its own `writeAtomic`: its operations apply all together or not at
 * all, and it resolves only once they are committed (an event is acknowledged after its entry is
 * durable, as before). A group applies its writes in the order they were asked for, so a group
 * that commits is the same as those writes one after another. When one write of a group fails
 * its condition, the group is rolled back and tried again without it, and the failed write then
 * runs alone after the others: it gets the answer it would have got in that order, not one that
 * depends on its neighbours (a duplicate or an erased user drops only that event). A failure
 * that names no write (the store unavailable, a body refused before the transaction) sends each
 * write of the group alone, so each caller gets its own answer.
 */
import { StorageError, type DocumentStore, type WriteOp } from '@aimass/storage';

/** The store's limit of operations per atomic write. */
const MAX_OPS = 500;

/** Tries of one group, each without the write the previous one failed on. */
const MAX_GROUP_TRIES = 3;

interface Pending {
  readonly ops: readonly WriteOp[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export interface GroupedWriteStats {
  /** Writes asked for. */
  readonly writes: number;
  /** Transactions committed or tried for them (a write alone counts one). */
  readonly transactions: number;
}

export class GroupedWrites {
  readonly #store: DocumentStore;
  #queue: Pending[] = [];
  #scheduled = false;
  #stats = { writes: 0, transactions: 0 };

  constructor(store: DocumentStore) {
    this.#store = store;
  }

  stats(): GroupedWriteStats {
    return { ...this.#stats };
  }

  /** As `DocumentStore.writeAtomic(ops)`, committed with the other writes of this turn. */
  write(ops: readonly WriteOp[]): Promise<void> {
    this.#stats.writes++;
    // More than a group can take: it goes alone (the store refuses it with its own error).
    if (ops.length === 0 || ops.length > MAX_OPS) return this.#alone(ops);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ops, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        const queue = this.#queue;
        this.#queue = [];
        void this.#flush(queue);
      });
    });
  }

  async #alone(ops: readonly WriteOp[]): Promise<void> {
    this.#stats.transactions++;
    await this.#store.writeAtomic(ops);
  }

  async #flush(queue: readonly Pending[]): Promise<void> {
    let group: Pending[] = [];
    let size = 0;
    for (const p of queue) {
      if (size + p.ops.length > MAX_OPS) {
        await this.#commit(group);
        group = [];
        size = 0;
      }
      group.push(p);
      size += p.ops.length;
    }
    if (group.length > 0) await this.#commit(group);
  }

  /** Commits `group` as one transaction, or as much of it as can be, in order; settles every write. */
  async #commit(group: readonly Pending[]): Promise<void> {
    let members = group;
    const failed: Pending[] = [];
    // A group where write after write fails (a redelivered backlog of duplicates) is not worth
    // more rolled-back tries: its writes go alone.
    for (let tries = 0; members.length > 1 && tries < MAX_GROUP_TRIES; tries++) {
      const ops = members.flatMap((p) => p.ops);
      try {
        this.#stats.transactions++;
        await this.#store.writeAtomic(ops);
        for (const p of members) p.resolve();
        members = [];
        break;
      } catch (err) {
        const culprit = culpritOf(err, members);
        if (culprit === undefined) break;
        failed.push(culprit);
        members = members.filter((p) => p !== culprit);
      }
    }
    // Left: one write, or a group whose failure named none of its writes.
    for (const p of [...members, ...failed]) await this.#settleAlone(p);
  }

  async #settleAlone(p: Pending): Promise<void> {
    try {
      await this.#alone(p.ops);
      p.resolve();
    } catch (err) {
      p.reject(err);
    }
  }
}

/** The write whose operation a failed group write names (`opIndex`), if it names one. */
function culpritOf(err: unknown, members: readonly Pending[]): Pending | undefined {
  const opIndex = err instanceof StorageError ? (err as { opIndex?: unknown }).opIndex : undefined;
  if (typeof opIndex !== 'number') return undefined;
  let start = 0;
  for (const p of members) {
    if (opIndex < start + p.ops.length) return p;
    start += p.ops.length;
  }
  return undefined;
}
