import { DeadlineExceededError, ResourceExhaustedError, CancelledError } from '@aimass/platform';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamicBatcher, type BatcherOptions } from './batcher.js';

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
});
