import { DeadlineExceededError, ResourceExhaustedError, CancelledError } from '@aimass/platform';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamicBatcher, ItemFailure, type BatcherOptions } from './batcher.js';

/** A fake executor: records each batch and lets the test finish runs when it wants. */
function recorder() {
  const batches: { payloads: string[]; rows: number[]; finish: (err?: Error) => void }[] = [];
  const execute = (payloads: readonly string[], rows: readonly number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push({
        payloads: [...payloads],
        rows: [...rows],
        finish: (err) => (err ? reject(err) : resolve(payloads.map((p) => `done:${p}`))),
      });
    });
  return { batches, execute };
}

const base: BatcherOptions = { name: 'm:1', maxBatchRows: 8, maxQueueDelayMs: 10, maxQueueRows: 32, maxInFlight: 1 };

describe('DynamicBatcher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds a partial batch until the queue delay, then runs the queued requests together', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher(base, execute);
    const results = ['a', 'b', 'c'].map((p) => b.submit({ rows: 1, key: 'k', payload: p }));
    await vi.advanceTimersByTimeAsync(9);
    expect(batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.payloads).toEqual(['a', 'b', 'c']);
    batches[0]!.finish();
    await expect(Promise.all(results)).resolves.toEqual(['done:a', 'done:b', 'done:c']);
    expect(b.stats()).toMatchObject({ batches: 1, rows: 3, largestBatch: 3, queuedRows: 0, inFlight: 0 });
  });

  it("tells the executor how long each request waited in the queue (the statistics' queue time)", async () => {
    const waits: number[][] = [];
    const b = new DynamicBatcher<string, string>(base, (payloads, _rows, waitedMs) => {
      waits.push([...waitedMs]);
      return Promise.resolve(payloads.map((p) => `done:${p}`));
    });
    const first = b.submit({ rows: 1, key: 'k', payload: 'a' });
    await vi.advanceTimersByTimeAsync(4);
    const second = b.submit({ rows: 1, key: 'k', payload: 'b' });
    await vi.advanceTimersByTimeAsync(6);
    await expect(Promise.all([first, second])).resolves.toEqual(['done:a', 'done:b']);
    expect(waits).toEqual([[10, 6]]);
  });

  it('fails only the requests the executor marks as failed, and answers the others', async () => {
    const refused = new Error('b was refused');
    const b = new DynamicBatcher<string, string>(base, (payloads) =>
      Promise.resolve(payloads.map((p) => (p === 'b' ? new ItemFailure(refused) : `done:${p}`))),
    );
    // Settled before the timers run, so b's rejection is handled when it happens.
    const settled = Promise.allSettled(['a', 'b', 'c'].map((p) => b.submit({ rows: 1, key: 'k', payload: p })));
    await vi.advanceTimersByTimeAsync(10);
    expect(await settled).toEqual([
      { status: 'fulfilled', value: 'done:a' },
      { status: 'rejected', reason: refused },
      { status: 'fulfilled', value: 'done:c' },
    ]);
    expect(b.stats()).toMatchObject({ batches: 1, rows: 3, inFlight: 0 });
  });

  it('dispatches a full batch at once, without waiting for the delay', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxBatchRows: 4 }, execute);
    void b.submit({ rows: 3, key: 'k', payload: 'a' });
    void b.submit({ rows: 1, key: 'k', payload: 'b' });
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((x) => x.rows)).toEqual([[3, 1]]);
  });

  it('dispatches a preferred batch size at once', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, preferredBatchRows: [2] }, execute);
    void b.submit({ rows: 1, key: 'k', payload: 'a' });
    void b.submit({ rows: 1, key: 'k', payload: 'b' });
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((x) => x.payloads)).toEqual([['a', 'b']]);
  });

  it('never puts more than maxBatchRows in a batch and keeps arrival order', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxBatchRows: 4, maxInFlight: 4 }, execute);
    for (const [p, rows] of [['a', 3], ['b', 2], ['c', 2], ['d', 1]] as const) void b.submit({ rows, key: 'k', payload: p });
    await vi.advanceTimersByTimeAsync(10);
    expect(batches.map((x) => x.payloads)).toEqual([['a'], ['b', 'c'], ['d']]);
    for (const x of batches) expect(x.rows.reduce((s, r) => s + r, 0)).toBeLessThanOrEqual(4);
  });

  it('batches only requests with the same shape key', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxInFlight: 2, maxQueueDelayMs: 0 }, execute);
    void b.submit({ rows: 1, key: 'len4', payload: 'a' });
    void b.submit({ rows: 1, key: 'len9', payload: 'b' });
    void b.submit({ rows: 1, key: 'len4', payload: 'c' });
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((x) => x.payloads)).toEqual([['a', 'c'], ['b']]);
  });

  it('lets the queue fill while the run slots are busy and then runs it as one batch', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxQueueDelayMs: 0 }, execute);
    void b.submit({ rows: 1, key: 'k', payload: 'first' });
    await vi.advanceTimersByTimeAsync(0);
    for (const p of ['b', 'c', 'd']) void b.submit({ rows: 1, key: 'k', payload: p });
    await vi.advanceTimersByTimeAsync(5);
    expect(batches).toHaveLength(1);
    batches[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((x) => x.payloads)).toEqual([['first'], ['b', 'c', 'd']]);
  });

  it('refuses a request that does not fit in the queue with RESOURCE_EXHAUSTED, and takes it again once there is room', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxQueueRows: 4, maxQueueDelayMs: 0 }, execute);
    void b.submit({ rows: 4, key: 'k', payload: 'a' });
    await vi.advanceTimersByTimeAsync(0); // a runs, the queue is empty again
    void b.submit({ rows: 3, key: 'k', payload: 'b' });
    const refused = b.submit({ rows: 2, key: 'k', payload: 'c' });
    await expect(refused).rejects.toBeInstanceOf(ResourceExhaustedError);
    await expect(refused).rejects.toThrow(/queue of model m:1 is full/);
    expect(b.stats().rejectedQueueFull).toBe(1);
    batches[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    const accepted = b.submit({ rows: 2, key: 'k', payload: 'd' });
    await vi.advanceTimersByTimeAsync(0);
    batches[1]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    batches[2]!.finish();
    await expect(accepted).resolves.toBe('done:d');
  });

  it('drops a request whose deadline passes while queued, never running it', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxQueueDelayMs: 0 }, execute);
    void b.submit({ rows: 1, key: 'k', payload: 'busy' });
    await vi.advanceTimersByTimeAsync(0);
    const late = b.submit({ rows: 1, key: 'k', payload: 'late', deadline: Date.now() + 5 });
    const onTime = b.submit({ rows: 1, key: 'k', payload: 'ok', deadline: Date.now() + 1000 });
    const lateResult = late.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    batches[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(await lateResult).toBeInstanceOf(DeadlineExceededError);
    expect(batches.map((x) => x.payloads)).toEqual([['busy'], ['ok']]);
    batches[1]!.finish();
    await expect(onTime).resolves.toBe('done:ok');
    expect(b.stats().expired).toBe(1);
  });

  it('removes a queued request when its call is aborted, with the abort reason', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxQueueDelayMs: 0 }, execute);
    void b.submit({ rows: 1, key: 'k', payload: 'busy' });
    await vi.advanceTimersByTimeAsync(0);
    const controller = new AbortController();
    const queued = b.submit({ rows: 1, key: 'k', payload: 'gone', signal: controller.signal });
    expect(b.stats().queuedRows).toBe(1);
    controller.abort(new DeadlineExceededError('deadline exceeded'));
    await expect(queued).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(b.stats()).toMatchObject({ queuedRows: 0, cancelled: 1 });
    const plain = new AbortController();
    const other = b.submit({ rows: 1, key: 'k', payload: 'gone2', signal: plain.signal });
    plain.abort();
    await expect(other).rejects.toBeInstanceOf(CancelledError);
    batches[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(batches).toHaveLength(1);
  });

  it('fails every request of a batch whose run fails, and keeps serving', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxQueueDelayMs: 0 }, execute);
    const a = b.submit({ rows: 1, key: 'k', payload: 'a' });
    const c = b.submit({ rows: 1, key: 'k', payload: 'c' });
    await vi.advanceTimersByTimeAsync(0);
    batches[0]!.finish(new Error('worker crashed'));
    await expect(a).rejects.toThrow('worker crashed');
    await expect(c).rejects.toThrow('worker crashed');
    const d = b.submit({ rows: 1, key: 'k', payload: 'd' });
    await vi.advanceTimersByTimeAsync(0);
    batches[1]!.finish();
    await expect(d).resolves.toBe('done:d');
  });

  it('runs up to maxInFlight batches at once', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxBatchRows: 1, maxInFlight: 2, maxQueueDelayMs: 0 }, execute);
    for (const p of ['a', 'b', 'c']) void b.submit({ rows: 1, key: 'k', payload: p });
    await vi.advanceTimersByTimeAsync(0);
    expect(b.stats()).toMatchObject({ inFlight: 2, queuedRows: 1 });
    batches[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((x) => x.payloads)).toEqual([['a'], ['b'], ['c']]);
  });

  it('drain waits for queued and running work; close fails what is queued', async () => {
    const { batches, execute } = recorder();
    const b = new DynamicBatcher({ ...base, maxQueueDelayMs: 0, maxBatchRows: 1 }, execute);
    const first = b.submit({ rows: 1, key: 'k', payload: 'a' });
    const second = b.submit({ rows: 1, key: 'k', payload: 'b' });
    let drained = false;
    void b.drain().then(() => (drained = true));
    await vi.advanceTimersByTimeAsync(0);
    batches[0]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(false);
    batches[1]!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(true);
    await expect(Promise.all([first, second])).resolves.toHaveLength(2);

    void b.submit({ rows: 1, key: 'k', payload: 'c' });
    await vi.advanceTimersByTimeAsync(0);
    const queued = b.submit({ rows: 1, key: 'k', payload: 'd' });
    b.close(new Error('unloaded'));
    await expect(queued).rejects.toThrow('unloaded');
    await expect(b.submit({ rows: 1, key: 'k', payload: 'e' })).rejects.toThrow('unloaded');
  });
  describe('between tenants', () => {
    it('fills each batch round-robin across tenants, in arrival order within each tenant', async () => {
      const { batches, execute } = recorder();
      const b = new DynamicBatcher({ ...base, maxBatchRows: 4, maxQueueDelayMs: 0 }, execute);
      for (const p of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']) void b.submit({ rows: 1, key: 'k', payload: p, tenant: 'a' });
      for (const p of ['b1', 'b2']) void b.submit({ rows: 1, key: 'k', payload: p, tenant: 'b' });
      await vi.advanceTimersByTimeAsync(0);
      expect(batches.map((x) => x.payloads)).toEqual([['a1', 'b1', 'a2', 'b2']]);
      batches[0]!.finish();
      await vi.advanceTimersByTimeAsync(0);
      expect(batches.map((x) => x.payloads)).toEqual([['a1', 'b1', 'a2', 'b2'], ['a3', 'a4', 'a5', 'a6']]);
    });

    it('passes the turn to the next tenant after each batch, so a late tenant waits one batch, not the flood', async () => {
      const { batches, execute } = recorder();
      const b = new DynamicBatcher({ ...base, maxBatchRows: 1, maxQueueDelayMs: 0 }, execute);
      for (let i = 1; i <= 5; i++) void b.submit({ rows: 1, key: 'k', payload: `a${i}`, tenant: 'a' });
      await vi.advanceTimersByTimeAsync(0);
      void b.submit({ rows: 1, key: 'k', payload: 'b1', tenant: 'b' });
      void b.submit({ rows: 1, key: 'k', payload: 'b2', tenant: 'b' });
      void b.submit({ rows: 1, key: 'k', payload: 'c1', tenant: 'c' });
      for (let i = 0; i < 8; i++) {
        batches[i]!.finish();
        await vi.advanceTimersByTimeAsync(0);
      }
      expect(batches.map((x) => x.payloads[0])).toEqual(['a1', 'a2', 'b1', 'c1', 'a3', 'b2', 'a4', 'a5']);
    });

    it('shares the queue: a flooding tenant is refused beyond its share and pushed out for a tenant within its share', async () => {
      const { batches, execute } = recorder();
      const b = new DynamicBatcher({ ...base, maxBatchRows: 2, maxQueueRows: 8, maxQueueDelayMs: 0 }, execute);
      void b.submit({ rows: 1, key: 'k', payload: 'busy', tenant: 'a' });
      await vi.advanceTimersByTimeAsync(0);
      const flood = Array.from({ length: 8 }, (_, i) => b.submit({ rows: 1, key: 'k', payload: `a${i}`, tenant: 'a' }).catch((e: unknown) => e));
      // Alone, the flooding tenant may use the whole queue.
      expect(b.stats()).toMatchObject({ queuedRows: 8, queuedTenants: 1 });
      const own = b.submit({ rows: 1, key: 'k', payload: 'b0', tenant: 'b' });
      // Its newest request made room.
      const dropped = await flood[7];
      expect(dropped).toBeInstanceOf(ResourceExhaustedError);
      expect((dropped as ResourceExhaustedError).message).toMatch(/queue share exceeded for tenant "a": 8 rows queued of a 4-row share of the queue of model m:1 \(8 rows shared by 2 tenants\), the newest dropped/);
      expect((dropped as ResourceExhaustedError).retryAfterMs).toBeGreaterThan(0);
      const refused = b.submit({ rows: 1, key: 'k', payload: 'a-more', tenant: 'a' });
      await expect(refused).rejects.toThrow(/queue share exceeded for tenant "a": 7 rows queued of a 4-row share/);
      void b.submit({ rows: 1, key: 'k', payload: 'b1', tenant: 'b' });
      expect(b.stats()).toMatchObject({ queuedRows: 8, pushedOut: 2, rejectedTenantShare: 1, rejectedQueueFull: 1 });
      batches[0]!.finish();
      await vi.advanceTimersByTimeAsync(0);
      expect(batches[1]!.payloads).toEqual(['a0', 'b0']);
      batches[1]!.finish();
      await expect(own).resolves.toBe('done:b0');
    });

    it('refuses a tenant when the queue is full and no other tenant holds more than its (minimum) share', async () => {
      const { execute } = recorder();
      const b = new DynamicBatcher({ ...base, maxBatchRows: 1, maxQueueRows: 4, minTenantShareRows: 2, maxQueueDelayMs: 0 }, execute);
      void b.submit({ rows: 1, key: 'k', payload: 'busy' });
      await vi.advanceTimersByTimeAsync(0);
      for (const t of ['a', 'a', 'b', 'b']) void b.submit({ rows: 1, key: 'k', payload: t, tenant: t });
      await expect(b.submit({ rows: 1, key: 'k', payload: 'c', tenant: 'c' })).rejects.toThrow(/queue of model m:1 is full \(4 of 4 rows\)/);
      expect(b.stats().pushedOut).toBe(0);
    });

    it('drops one tenant\'s expired request without disturbing the others\' order', async () => {
      const { batches, execute } = recorder();
      const b = new DynamicBatcher({ ...base, maxBatchRows: 4, maxQueueDelayMs: 0 }, execute);
      void b.submit({ rows: 1, key: 'k', payload: 'busy' });
      await vi.advanceTimersByTimeAsync(0);
      void b.submit({ rows: 1, key: 'k', payload: 'a1', tenant: 'a' });
      const late = b.submit({ rows: 1, key: 'k', payload: 'b-late', tenant: 'b', deadline: Date.now() + 5 }).catch((e: unknown) => e);
      void b.submit({ rows: 1, key: 'k', payload: 'a2', tenant: 'a' });
      void b.submit({ rows: 1, key: 'k', payload: 'b2', tenant: 'b' });
      await vi.advanceTimersByTimeAsync(10);
      batches[0]!.finish();
      await vi.advanceTimersByTimeAsync(0);
      expect(await late).toBeInstanceOf(DeadlineExceededError);
      expect(batches[1]!.payloads).toEqual(['a1', 'b2', 'a2']);
    });
  });
});
