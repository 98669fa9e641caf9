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
