import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';

describe('circuit breaker', () => {
  it('opens after the threshold of consecutive failures and lets one trial through after the open time', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ threshold: 3, openMs: 1000, now: () => now });
    breaker.failure();
    breaker.failure();
    expect(breaker.allow()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
    expect(breaker.retryInMs()).toBe(1000);
    now = 999;
    expect(breaker.allow()).toBe(false);
    now = 1000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(false); // one trial at a time
    breaker.failure(); // the trial failed: open again for another period
    expect(breaker.allow()).toBe(false);
    now = 2000;
    expect(breaker.allow()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
  });

  it('resets the count on success', () => {
    const breaker = new CircuitBreaker({ threshold: 2, openMs: 1000, now: () => 0 });
    breaker.failure();
    breaker.success();
    breaker.failure();
    expect(breaker.state).toBe('closed');
  });

  it('never opens with threshold 0', () => {
    const breaker = new CircuitBreaker({ threshold: 0, openMs: 1000 });
    for (let i = 0; i < 100; i++) breaker.failure();
    expect(breaker.allow()).toBe(true);
  });
});
