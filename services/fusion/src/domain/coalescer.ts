/** How one shared downstream call runs: the latest deadline of its members, cancelled when all have gone. */
export interface SharedCall {
  /** Absolute deadline (ms since epoch); undefined when a member has none. */
  readonly deadline: number | undefined;
  readonly signal: AbortSignal;
}

export interface CoalescerOptions<C, I, R> {
  /**
   * Items gathered into one call. A member (one caller's items) is never split: one larger than
   * this goes alone, exactly as it would without coalescing.
   */
  readonly maxItems: number;
  /** Weight (e.g. bytes) gathered into one call, with `weightOf`; a heavier member goes alone. */
  readonly maxWeight?: number | undefined;
  readonly weightOf?: ((item: I) => number) | undefined;
  /**
   * 0: a call takes the members that arrive in the same event-loop turn (it is sent on
   * `setImmediate`); > 0: the first member waits up to this long for others. A full call is sent at once.
   */
  readonly maxDelayMs: number;
  /** The downstream call for the items of several members; resolves with one result per item, in order. */
  readonly run: (context: C, items: I[], call: SharedCall) => Promise<readonly R[]>;
  /** What a member gets when its own deadline passes first. */
  readonly deadlineError: () => Error;
  /** What a member gets when its own caller cancels. */
  readonly cancelledError: () => Error;
  /**
   * Failures that one member's items may have caused (INVALID_ARGUMENT): each member of the failed
   * call is then sent again alone, so it gets the answer it would have had without coalescing.
   */
  readonly isolate?: ((err: unknown) => boolean) | undefined;
}

export interface MemberOptions {
  /** Absolute deadline (ms since epoch); undefined: none (the downstream client's default applies). */
  readonly deadline: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface CoalescerStats {
  /** Downstream calls made (shared and isolated retries). */
  calls: number;
  /** Members (caller requests) that were sent. */
  members: number;
  /** Items sent. */
  items: number;
  /** The most members one call held. */
  largestCall: number;
  /** Members sent again alone after a shared call failed with an isolating error. */
  isolated: number;
  /** Members that left (deadline, cancel) before their call answered. */
  abandoned: number;
}

interface Member<I, R> {
  readonly items: readonly I[];
  readonly weight: number;
  readonly deadline: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (results: R[]) => void;
  readonly reject: (err: unknown) => void;
  settled: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  onAbort: (() => void) | undefined;
  /** The call it was sent in, once sent. */
  call: Call<I, R> | undefined;
}

interface Call<I, R> {
  readonly members: Member<I, R>[];
  items: number;
  weight: number;
  /** Members still waiting for the answer; at 0 the call is cancelled. */
  live: number;
  controller: AbortController | undefined;
  /** Answered or failed: members leaving now no longer cancel it. */
  done: boolean;
}

interface Group<C, I, R> {
  readonly context: C;
  open: Call<I, R>;
  flush: (() => void) | undefined;
}

const newCall = <I, R>(): Call<I, R> => ({ members: [], items: 0, weight: 0, live: 0, controller: undefined, done: false });

/** setTimeout's ceiling (about 24.8 days); a member deadline beyond it is as good as none. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Request coalescing: members (the items of one caller) submitted under the same key within one
 * event-loop turn (or `maxDelayMs`) are sent as one downstream call, split into calls of at most
 * `maxItems` items / `maxWeight`. Each member keeps its own outcome: its deadline and cancellation
 * end only its own wait (the shared call runs to the latest deadline of its members and is
 * cancelled when every member has gone), a failed call fails each member with the same error, and
 * results are handed back per member in order. The key must hold everything that makes two calls
 * different (tenant, model): members under one key share the `context` of the first.
 */
export class Coalescer<C, I, R> {
  readonly #o: CoalescerOptions<C, I, R>;
  readonly #maxWeight: number;
  readonly #groups = new Map<string, Group<C, I, R>>();
  readonly #stats: CoalescerStats = { calls: 0, members: 0, items: 0, largestCall: 0, isolated: 0, abandoned: 0 };

  constructor(options: CoalescerOptions<C, I, R>) {
    if (!Number.isInteger(options.maxItems) || options.maxItems < 1) throw new RangeError('coalescer: maxItems must be an integer >= 1');
    if (!(options.maxDelayMs >= 0)) throw new RangeError('coalescer: maxDelayMs must be >= 0');
    this.#o = options;
    this.#maxWeight = options.weightOf ? (options.maxWeight ?? Infinity) : Infinity;
  }

  stats(): CoalescerStats {
    return { ...this.#stats };
  }

  /** Resolves with one result per item (in order) or rejects with the call's error, the member's deadline or its cancellation. */
  submit(key: string, context: C, items: readonly I[], options: MemberOptions): Promise<R[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (options.signal?.aborted) return Promise.reject(this.#o.cancelledError());
    if (options.deadline !== undefined && options.deadline <= Date.now()) return Promise.reject(this.#o.deadlineError());
    return new Promise<R[]>((resolve, reject) => {
      const weightOf = this.#o.weightOf;
      const member: Member<I, R> = {
        items,
        weight: weightOf ? items.reduce((sum, item) => sum + weightOf(item), 0) : 0,
        deadline: options.deadline,
        signal: options.signal,
        resolve,
        reject,
        settled: false,
        timer: undefined,
        onAbort: undefined,
        call: undefined,
      };
      const wait = member.deadline === undefined ? Infinity : member.deadline - Date.now();
      if (wait <= MAX_TIMER_MS) member.timer = setTimeout(() => this.#leave(member, this.#o.deadlineError()), wait);
      if (member.signal) {
        member.onAbort = () => this.#leave(member, this.#o.cancelledError());
        member.signal.addEventListener('abort', member.onAbort, { once: true });
      }
      this.#enqueue(key, context, member);
    });
  }

  #enqueue(key: string, context: C, member: Member<I, R>): void {
    let group = this.#groups.get(key);
    if (!group) {
      group = { context, open: newCall(), flush: undefined };
      this.#groups.set(key, group);
    }
    const open = group.open;
    if (open.members.length > 0 && (open.items + member.items.length > this.#o.maxItems || open.weight + member.weight > this.#maxWeight)) {
      this.#send(group.context, open);
      group.open = newCall();
    }
    const call = group.open;
    call.members.push(member);
    call.items += member.items.length;
    call.weight += member.weight;
    if (call.items >= this.#o.maxItems || call.weight >= this.#maxWeight) {
      this.#send(group.context, call);
      group.open = newCall();
    }
    if (group.open.members.length > 0) this.#scheduleFlush(key, group);
    else if (!group.flush) this.#groups.delete(key);
  }

  #scheduleFlush(key: string, group: Group<C, I, R>): void {
    if (group.flush) return;
    const flush = () => {
      if (this.#groups.get(key) === group) this.#groups.delete(key);
      group.flush = undefined;
      this.#send(group.context, group.open);
    };
    group.flush = flush;
    if (this.#o.maxDelayMs > 0) setTimeout(flush, this.#o.maxDelayMs);
    else setImmediate(flush);
  }

  /** Sends the members still waiting (the others left while it gathered). */
  #send(context: C, call: Call<I, R>): void {
    const members = call.members.filter((m) => !m.settled);
    if (members.length === 0) return;
    const items: I[] = [];
    let deadline: number | undefined = 0;
    for (const m of members) {
      for (const item of m.items) items.push(item);
      deadline = deadline === undefined || m.deadline === undefined ? undefined : Math.max(deadline, m.deadline);
      m.call = call;
    }
    call.members.length = 0;
    call.members.push(...members);
    call.live = members.length;
    call.controller = new AbortController();
    const s = this.#stats;
    s.calls += 1;
    s.members += members.length;
    s.items += items.length;
    s.largestCall = Math.max(s.largestCall, members.length);
    const signal = call.controller.signal;
    const finished = (async () => this.#o.run(context, items, { deadline, signal }))();
    finished.then(
      (results) => {
        call.done = true;
        if (results.length !== items.length) {
          this.#fail(call, new Error(`coalesced call answered ${results.length} results for ${items.length} items`));
          return;
        }
        let offset = 0;
        for (const m of call.members) {
          const mine = results.slice(offset, offset + m.items.length);
          offset += m.items.length;
          this.#settle(m, () => m.resolve(mine));
        }
      },
      (err: unknown) => {
        call.done = true;
        if (call.members.length > 1 && this.#o.isolate?.(err)) this.#isolate(context, call);
        else this.#fail(call, err);
      },
    );
  }

  #fail(call: Call<I, R>, err: unknown): void {
    for (const m of call.members) this.#settle(m, () => m.reject(err));
  }

  /** Sends every member of a failed call again on its own, under its own deadline and cancellation. */
  #isolate(context: C, call: Call<I, R>): void {
    for (const m of call.members) {
      if (m.settled) continue;
      this.#stats.isolated += 1;
      this.#stats.calls += 1;
      const signal = m.signal ?? new AbortController().signal;
      (async () => this.#o.run(context, [...m.items], { deadline: m.deadline, signal }))().then(
        (results) =>
          this.#settle(m, () =>
            results.length === m.items.length ? m.resolve([...results]) : m.reject(new Error(`call answered ${results.length} results for ${m.items.length} items`)),
          ),
        (err: unknown) => this.#settle(m, () => m.reject(err)),
      );
    }
  }

  /** A member leaves before its answer (deadline, cancel); its call goes on for the others. */
  #leave(member: Member<I, R>, err: Error): void {
    if (member.settled) return;
    this.#stats.abandoned += 1;
    this.#settle(member, () => member.reject(err));
  }

  #settle(member: Member<I, R>, finish: () => void): void {
    if (member.settled) return;
    member.settled = true;
    if (member.timer) clearTimeout(member.timer);
    if (member.onAbort) member.signal?.removeEventListener('abort', member.onAbort);
    const call = member.call;
    if (call?.controller && !call.done) {
      call.live -= 1;
      if (call.live === 0) call.controller.abort();
    }
    finish();
  }
}
