/**
 * An LRU cache bounded by the bytes of its entries rather than their count: personal models range
 * from one kilobyte (a new user) to hundreds (a heavy one), so a count bound would either waste
 * memory or overflow it. Map iteration order is insertion order, so re-inserting on a hit keeps
 * the least recently used entry first.
 */
export interface CacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Entries refused because they alone exceed maxBytes. */
  rejected: number;
}

export class ByteLruCache<V> {
  private readonly map = new Map<string, { value: V; bytes: number }>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private rejected = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isFinite(maxBytes) || maxBytes <= 0) throw new RangeError(`cache maxBytes must be > 0, got ${maxBytes}`);
  }

  /** The value, marked most recently used; counts a hit or a miss. */
  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  /** Without touching recency or the counters. */
  peek(key: string): V | undefined {
    return this.map.get(key)?.value;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /**
   * Inserts or replaces, then evicts least recently used entries until the total fits. An entry
   * larger than the whole cache is not kept (and any previous value of the key is dropped).
   */
  set(key: string, value: V, bytes: number): boolean {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`cache entry size must be >= 0, got ${bytes}`);
    this.delete(key);
    if (bytes > this.maxBytes) {
      this.rejected++;
      return false;
    }
    this.map.set(key, { value, bytes });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
      this.evictions++;
    }
    return true;
  }

  delete(key: string): boolean {
    const entry = this.map.get(key);
    if (!entry) return false;
    this.map.delete(key);
    this.bytes -= entry.bytes;
    return true;
  }

  /** Deletes every key starting with `prefix` (e.g. a tenant's). */
  deletePrefix(prefix: string): number {
    let count = 0;
    for (const key of [...this.map.keys()]) if (key.startsWith(prefix) && this.delete(key)) count++;
    return count;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  stats(): CacheStats {
    return {
      entries: this.map.size,
      bytes: this.bytes,
      maxBytes: this.maxBytes,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      rejected: this.rejected,
    };
  }
}
