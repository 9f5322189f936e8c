/**
 * Zipf's law over ranks 1..n: P(k) = k^-s / H(n, s). Sampled by inverting the exact cumulative
 * distribution (one Float64Array of n entries, a bisection per draw): exact for any s ≥ 0 and
 * cheap enough for the load process at a million ranks (8 MB, ~20 comparisons a draw). s = 0 is
 * the uniform distribution.
 */
export class ZipfDistribution {
  /** cdf[k - 1] = P(rank ≤ k); the last entry is exactly 1. */
  private readonly cdf: Float64Array;
  private readonly norm: number;

  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`Zipf needs at least one rank, got n = ${n}`);
    if (!(s >= 0) || !Number.isFinite(s)) throw new RangeError(`Zipf exponent must be a finite number >= 0, got s = ${s}`);
    const cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 1; k <= n; k++) {
      sum += k ** -s;
      cdf[k - 1] = sum;
    }
    for (let i = 0; i < n; i++) (cdf as Float64Array)[i] = (cdf[i] as number) / sum;
    cdf[n - 1] = 1;
    this.cdf = cdf;
    this.norm = sum;
  }

  /** P(rank = k). */
  pmf(k: number): number {
    if (!Number.isInteger(k) || k < 1 || k > this.n) return 0;
    return k ** -this.s / this.norm;
  }

  /** P(rank ≤ k). */
  cumulative(k: number): number {
    if (k < 1) return 0;
    if (k >= this.n) return 1;
    return this.cdf[Math.floor(k) - 1] as number;
  }

  /** The smallest rank whose cumulative probability reaches u (u in [0, 1)). */
  quantile(u: number): number {
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  }

  /** A rank drawn with `random()` uniform in [0, 1). */
  sample(random: () => number): number {
    return this.quantile(random());
  }

  mean(): number {
    let m = 0;
    for (let k = 1; k <= this.n; k++) m += k * this.pmf(k);
    return m;
  }
}

/** Mulberry32: a small, fast, seeded uniform generator in [0, 1) (the load process draws one per request). */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A fixed uniform number in [0, 1) for (key, salt): per-user choices (has a model, how many
 * examples, which pool model) that must come out the same in every process and every run.
 */
export function hashUniform(key: number, salt: number): number {
  let h = (Math.imul(key >>> 0, 0x9e3779b1) ^ Math.imul(salt >>> 0, 0x85ebca77) ^ Math.floor(key / 4294967296)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h / 4294967296;
}
