// Tier 1: encoded KV records in host RAM, least recently used first, bounded in bytes.
// Pure bookkeeping: putting a record returns the ones pushed out, for the caller to move on.

export interface RamEntry {
  requestId: string;
  record: Uint8Array;
}

export class RamTier {
  readonly budget: number;
  /** insertion order = least recently used first */
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;

  constructor(budgetBytes: number) {
    this.budget = budgetBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(requestId: string): boolean {
    return this.#entries.has(requestId);
  }

  bytesOf(requestId: string): number {
    return this.#entries.get(requestId)?.length ?? 0;
  }

  /** Stores a record (replacing an older one); returns the entries that no longer fit, oldest first. */
  put(requestId: string, record: Uint8Array): RamEntry[] {
    this.delete(requestId);
    this.#entries.set(requestId, record);
    this.#bytes += record.length;
    const out: RamEntry[] = [];
    for (const [id, r] of this.#entries) {
      if (this.#bytes <= this.budget) break;
      this.delete(id);
      out.push({ requestId: id, record: r });
    }
    return out;
  }

  /** Removes and returns a record (it is about to become KV cells again). */
  take(requestId: string): Uint8Array | undefined {
    const r = this.#entries.get(requestId);
    if (r) this.delete(requestId);
    return r;
  }

  delete(requestId: string): boolean {
    const r = this.#entries.get(requestId);
    if (!r) return false;
    this.#entries.delete(requestId);
    this.#bytes -= r.length;
    return true;
  }

  /** Every entry, oldest first (the shutdown flush writes them all to the store). */
  entries(): RamEntry[] {
    return [...this.#entries].map(([requestId, record]) => ({ requestId, record }));
  }
}

/** bytes of released records after which a full garbage collection runs */
const GC_AFTER = 256 << 20;

/**
 * Records that left RAM are garbage, but the garbage collector frees their (large, off-heap)
 * buffers late: without a nudge RSS overshot SESSION_RAM_BYTES by several records. A full
 * collection after every min(256 MiB, budget / 2) released bytes keeps it within bounds; it runs
 * 200 ms later, not inside the decode step that released the record (that request's TTFT).
 */
export class Reclaimer {
  readonly #every: number;
  #released = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(ramBudget: number) {
    this.#every = Math.max(16 << 20, Math.min(GC_AFTER, ramBudget / 2));
  }

  released(bytes: number): void {
    this.#released += bytes;
    if (this.#released < this.#every) return;
    this.#released = 0;
    this.#timer ??= setTimeout(() => ((this.#timer = null), Bun.gc(true)), 200);
    this.#timer.unref?.();
  }
}
