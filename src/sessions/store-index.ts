// What this process knows of the persistent store: per key, each record's size and age, and the
// request_id it belongs to. Pure bookkeeping for listing, the byte cap and TTL sweeps; lookups of
// a single session always ask the store itself (another replica may have written it).
import type { RecordKind } from "./store.ts";

interface Entry {
  requestId: string | null;
  meta: number;
  kv: number;
  lastUsed: number;
}

export class StoreIndex {
  readonly #byKey = new Map<string, Entry>();
  #total = 0;

  get size(): number {
    return this.#byKey.size;
  }

  get totalBytes(): number {
    return this.#total;
  }

  keys(): string[] {
    return [...this.#byKey.keys()];
  }

  has(key: string, kind: RecordKind): boolean {
    return (this.#byKey.get(key)?.[kind] ?? 0) > 0;
  }

  bytes(key: string): number {
    const e = this.#byKey.get(key);
    return e ? e.meta + e.kv : 0;
  }

  note(key: string, kind: RecordKind, bytes: number, lastUsed: number, requestId?: string): void {
    const e = this.#byKey.get(key) ?? { requestId: null, meta: 0, kv: 0, lastUsed: 0 };
    this.#total += bytes - e[kind];
    e[kind] = bytes;
    e.lastUsed = Math.max(e.lastUsed, lastUsed);
    if (requestId !== undefined) e.requestId = requestId;
    this.#byKey.set(key, e);
  }

  name(key: string, requestId: string): void {
    const e = this.#byKey.get(key);
    if (e) e.requestId = requestId;
  }

  forget(key: string): void {
    const e = this.#byKey.get(key);
    if (!e) return;
    this.#total -= e.meta + e.kv;
    this.#byKey.delete(key);
  }

  /** Sessions (with a known request_id) sorted by request_id, for listing. */
  named(): { requestId: string; bytes: number; lastUsed: number }[] {
    const out: { requestId: string; bytes: number; lastUsed: number }[] = [];
    for (const e of this.#byKey.values()) if (e.requestId !== null && e.meta > 0) out.push({ requestId: e.requestId, bytes: e.meta + e.kv, lastUsed: e.lastUsed });
    return out;
  }

  olderThan(cutoff: number): { key: string; requestId: string | null }[] {
    const out: { key: string; requestId: string | null }[] = [];
    for (const [key, e] of this.#byKey) if (e.lastUsed < cutoff) out.push({ key, requestId: e.requestId });
    return out;
  }

  requestIdOf(key: string): string | null {
    return this.#byKey.get(key)?.requestId ?? null;
  }

  lastUsedOf(key: string): number | undefined {
    return this.#byKey.get(key)?.lastUsed;
  }

  /** Keys to drop, least recently used first, until the total is within `cap` (never `keep`). */
  overCap(cap: number, keep: string): { key: string; requestId: string | null; lastUsed: number }[] {
    if (this.#total <= cap) return [];
    const victims = [...this.#byKey].filter(([k]) => k !== keep).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    const out: { key: string; requestId: string | null; lastUsed: number }[] = [];
    let total = this.#total;
    for (const [key, e] of victims) {
      if (total <= cap) break;
      total -= e.meta + e.kv;
      out.push({ key, requestId: e.requestId, lastUsed: e.lastUsed });
    }
    return out;
  }
}
