// The persistent tier's bookkeeping: every write, delete, TTL sweep and byte-cap drop goes through
// here, with its health (a failure degrades the store, generation goes on) and this process's
// index of what the store holds. A shared store (Redis) decides expiry and the cap on its own
// records, by every replica's use; a directory one by the index.
import { logEvent } from "../log.ts";
import { StoreHealth } from "./store-health.ts";
import { StoreIndex } from "./store-index.ts";
import { sessionKey, type RecordKind, type SessionStore } from "./store.ts";

export interface TierLimits {
  /** cap, bytes (0: none) */
  storeBytes: number;
  /** idle expiry, seconds (0: none) */
  ttlS: number;
  /** seconds an operation may take (0: no limit) */
  storeTimeoutS?: number;
}

/** what the tier counts (the manager's counters object) */
export interface TierCounters {
  droppedStore: number;
  expired: number;
}

export class StoreTier {
  readonly store: SessionStore;
  readonly health: StoreHealth;
  readonly index = new StoreIndex();
  readonly #limits: TierLimits;
  readonly #counters: TierCounters;

  constructor(store: SessionStore, limits: TierLimits, counters: TierCounters) {
    this.store = store;
    this.#limits = limits;
    this.#counters = counters;
    this.health = new StoreHealth(store.description, (limits.storeTimeoutS ?? 0) * 1000);
  }

  /** Writes one record; false (and the store degraded) when it failed. */
  async put(requestId: string, kind: RecordKind, record: Uint8Array): Promise<boolean> {
    const key = sessionKey(requestId);
    const written = await this.health.run(`put ${kind}`, () => this.store.put(key, kind, record).then((total) => ({ total })));
    if (!written) return false;
    this.index.note(key, kind, record.length, Date.now(), requestId);
    await this.#enforceCap(key, typeof written.total === "number" ? written.total : this.index.totalBytes);
    return true;
  }

  /** Deletes a key's records; the index forgets them only once the store did. True if the store had any. */
  async delete(key: string): Promise<boolean> {
    const known = this.index.has(key, "meta") || this.index.has(key, "kv");
    const found = await this.health.run("delete", () => this.store.delete(key).then((had) => ({ had })));
    if (!found) return false;
    this.index.forget(key);
    return found.had || known;
  }

  /** Drops what has been idle longer than SESSION_TTL_S (by any writer's use, for a shared store). */
  async sweep(now: number, isLive: (requestId: string) => boolean): Promise<void> {
    if (this.#limits.ttlS <= 0) return;
    const cutoff = now - this.#limits.ttlS * 1000;
    const expired = (key: string) => {
      this.#counters.expired++;
      logEvent("info", "session_expired", { request_id: this.index.requestIdOf(key), key });
    };
    const store = this.store;
    if (store.oldest && store.deleteIfIdle) {
      // the oldest records across every replica; one used again meanwhile keeps its key
      for (const { key } of (await this.health.run("sweep", () => store.oldest!(100, cutoff))) ?? []) {
        const requestId = this.index.requestIdOf(key);
        if (requestId && isLive(requestId)) continue;
        if (!(await this.health.run("delete", () => store.deleteIfIdle!(key, cutoff)))) continue;
        this.index.forget(key);
        expired(key);
      }
      return;
    }
    for (const { key, requestId } of this.index.olderThan(cutoff)) {
      if (requestId && isLive(requestId)) continue;
      expired(key);
      await this.delete(key);
    }
  }

  /** SESSION_STORE_BYTES: least recently used sessions go first (never the one just written). */
  async #enforceCap(keep: string, total: number): Promise<void> {
    const cap = this.#limits.storeBytes;
    if (cap <= 0 || total <= cap) return;
    const dropped = (requestId: string | null) => {
      this.#counters.droppedStore++;
      logEvent("warn", "session_dropped", { request_id: requestId, reason: `SESSION_STORE_BYTES (${cap}) exceeded` });
    };
    const store = this.store;
    if (store.oldest && store.deleteIfIdle) {
      // a shared store counts and orders every replica's records; a session used since it was listed keeps its key
      for (const v of (await this.health.run("cap", () => store.oldest!(32))) ?? []) {
        if (total <= cap) break;
        if (v.key === keep || !(await this.health.run("delete", () => store.deleteIfIdle!(v.key, v.lastUsed + 1)))) continue;
        dropped(this.index.requestIdOf(v.key));
        this.index.forget(v.key);
        total -= v.bytes;
      }
      return;
    }
    for (const { key, requestId, lastUsed } of this.index.overCap(cap, keep)) {
      // another write may have run meanwhile: stop once within the cap, skip a victim used since
      if (this.index.totalBytes <= cap) break;
      if (this.index.lastUsedOf(key) !== lastUsed) continue;
      dropped(requestId);
      await this.delete(key);
    }
  }
}
