// Policy of the session tiers below the KV cache: host RAM (tier 1) and a persistent store
// (tier 2, directory or Redis). The engine calls it when a sequence leaves the KV cache, when a
// request for an unknown or evicted request_id arrives, and after every request. No llama calls:
// KV state bytes come in from, and go out to, the engine's runner.
import { BlobError, decodeRecord, encodeRecord, incompatibility, RecordBuilder, type EngineIdentity, type SessionRecord } from "./blob.ts";
import { logEvent } from "../log.ts";
import { RamTier, Reclaimer } from "./ram-tier.ts";
import { sessionKey, type RecordKind, type SessionStore } from "./store.ts";
import { StoreHealth } from "./store-health.ts";
import { StoreIndex } from "./store-index.ts";
import { StoreTier } from "./store-tier.ts";
import type { Restore, SessionLimits, SessionSnapshot, StoredSession } from "./session-types.ts";

/** bytes of KV records that may be on their way to the store at once, at least (else SESSION_RAM_BYTES) */
const MIN_IN_FLIGHT = 256 << 20;

export class SessionManager {
  readonly #self: EngineIdentity;
  readonly #limits: SessionLimits;
  readonly #ram: RamTier;
  /** records on their way from RAM to the store (still restorable from here meanwhile) */
  readonly #spilling = new Map<string, Uint8Array>();
  /** the persistent tier's writes, deletes, sweeps and cap (null: no store) */
  readonly #tier: StoreTier | null;
  /** what this process knows the store holds */
  readonly index: StoreIndex;
  /** sessions dropped while their KV record was being written: deleted again once it lands */
  readonly #tombstones = new Set<string>();
  #spillingBytes = 0;
  readonly #reclaimer: Reclaimer;
  /** the record a state is being written into (stateBuffer() → saved()) */
  #building: RecordBuilder | null = null;
  readonly counters = {
    savedToRam: 0, spilledToStore: 0, restoredFromRam: 0, restoredFromStore: 0, recomputed: 0,
    metaWrites: 0, rejectedBlobs: 0, droppedRam: 0, droppedStore: 0, expired: 0,
  };
  readonly #health: StoreHealth;

  constructor(store: SessionStore | null, self: EngineIdentity, limits: SessionLimits) {
    this.#self = self;
    this.#limits = limits;
    this.#ram = new RamTier(limits.ramBytes);
    this.#reclaimer = new Reclaimer(limits.ramBytes);
    this.#tier = store ? new StoreTier(store, limits, this.counters) : null;
    this.#health = this.#tier?.health ?? new StoreHealth("no store", 0);
    this.index = this.#tier?.index ?? new StoreIndex();
  }

  /** why the store is not usable now (null: healthy); generation goes on from RAM */
  get degraded(): string | null {
    return this.#health.degraded;
  }

  get storeErrors(): number {
    return this.#health.errors;
  }

  /** called when `degraded` changes */
  set onHealth(f: (degraded: string | null) => void) {
    this.#health.onChange = f;
  }

  get persistent(): boolean {
    return this.#tier !== null;
  }

  /** the store's description ("off" without one) */
  get storeName(): string {
    return this.#tier?.store.description ?? "off";
  }

  close(): void {
    this.#tier?.store.close();
  }

  /** Reads the store's index (ids, sizes, ages) and applies the TTL and the byte cap. */
  async init(): Promise<void> {
    const store = this.#tier?.store;
    if (!store) return;
    await this.#health.run("index", async () => {
      for (const r of await store.list()) this.index.note(r.key, r.kind, r.bytes, r.lastUsed);
      for (const key of this.index.keys()) {
        const meta = await store.get(key, "meta");
        const rec = meta && this.#decode(meta, key);
        if (rec) this.index.name(key, rec.header.requestId);
      }
    });
    await this.sweep(Date.now());
  }

  /** The header every record of this session carries. */
  #header(s: SessionSnapshot, kind: RecordKind, kvTokens: number) {
    return { ...this.#self, kind, requestId: s.requestId, promptLen: s.promptLen, kvTokens, lastUsed: s.lastUsed };
  }

  /** Where llama.cpp writes a leaving sequence's state: the payload of its record-to-be (one copy). */
  stateBuffer(s: SessionSnapshot, kvTokens: number, size: number): Uint8Array {
    this.#building = new RecordBuilder(this.#header(s, "kv", kvTokens), s.tokens, size);
    return this.#building.payload;
  }

  /** The KV record of a state: the one stateBuffer() laid out around it, or a new one (a copy). */
  #kvRecord(s: SessionSnapshot, kvTokens: number, state: Uint8Array): Uint8Array {
    const b = this.#building;
    this.#building = null;
    return b && state.buffer === b.payload.buffer ? b.finish(state.length) : encodeRecord(this.#header(s, "kv", kvTokens), s.tokens, state);
  }

  /** A sequence left the KV cache: its state goes to RAM, and what no longer fits there to the store. */
  saved(s: SessionSnapshot, kvTokens: number, state: Uint8Array): void {
    const record = this.#kvRecord(s, kvTokens, state);
    this.counters.savedToRam++;
    for (const out of this.#ram.put(s.requestId, record)) this.#spill(out.requestId, out.record);
  }

  /** A KV record with nowhere to go: its session will decode its tokens again. */
  #dropState(requestId: string, record: Uint8Array, reason: string): void {
    this.counters.droppedRam++;
    this.#reclaimer.released(record.length);
    logEvent("warn", "session_state_dropped", { request_id: requestId, bytes: record.length, reason });
  }

  #spill(requestId: string, record: Uint8Array): void {
    const tier = this.#tier;
    if (!tier) return this.#dropState(requestId, record, "SESSION_RAM_BYTES exceeded and no persistent store");
    // records in flight to the store count against RAM too: past the bound (a slow store under
    // heavy eviction) one is dropped instead of piling up
    if (this.#spillingBytes + record.length > Math.max(this.#limits.ramBytes, MIN_IN_FLIGHT)) {
      return this.#dropState(requestId, record, "too many bytes already on their way to the store");
    }
    this.#spilling.set(requestId, record);
    this.#spillingBytes += record.length;
    void tier.put(requestId, "kv", record).then(async (ok) => {
      this.#spillingBytes -= record.length;
      if (this.#spilling.get(requestId) === record) this.#spilling.delete(requestId);
      // DELETEd while this write was in flight, and not written again since (persist clears it)
      if (this.#tombstones.delete(requestId) && ok) await tier.delete(sessionKey(requestId));
      if (!ok) return this.#dropState(requestId, record, "the store write failed");
      this.counters.spilledToStore++;
      this.#reclaimer.released(record.length);
    });
  }

  /** The state to restore a sequence from, if a valid one is in RAM (sync; the store needs fromStore()). */
  takeFromRam(requestId: string, tokens: Int32Array): Restore | null {
    const record = this.#ram.take(requestId) ?? this.#spilling.get(requestId);
    if (!record) return null;
    return this.#usable(requestId, record, tokens, "ram");
  }

  /** Whether a lookup of this session must ask the store (else RAM and the index answer at once). */
  mayHave(requestId: string, kind: RecordKind): boolean {
    if (!this.#tier) return false;
    // a degraded shared store is not asked on the request path (each ask could wait for its
    // timeout): this process's index answers until a background write heals it
    return (this.#tier.store.shared && !this.degraded) || this.index.has(sessionKey(requestId), kind);
  }

  /** The state to restore from the store (after RAM had none); null: decode the tokens again. */
  async fromStore(requestId: string, tokens: Int32Array): Promise<Restore | null> {
    if (!this.mayHave(requestId, "kv")) return null;
    // a shared store is asked even when this process's index has no record: another replica may have written one
    const record = await this.#health.run("get", () => this.#tier!.store.get(sessionKey(requestId), "kv"));
    return record ? this.#usable(requestId, record, tokens, "store") : null;
  }

  #usable(requestId: string, bytes: Uint8Array, tokens: Int32Array, from: "ram" | "store"): Restore | null {
    const rec = this.#decode(bytes, requestId);
    if (!rec) return null;
    const why = rec.header.kind !== "kv" ? "not a KV record" : rec.header.requestId !== requestId ? "written for another request_id"
      : incompatibility(rec.header, this.#self);
    // usable prefix: the tokens the blob shares with the sequence (a cut stream may have shortened
    // it, a chat synced to a new prompt may have replaced its end); the cells past them are trimmed
    const limit = Math.min(rec.header.kvTokens, tokens.length - 1);
    let n = 0;
    if (why === null) while (n < limit && rec.tokens[n] === tokens[n]) n++;
    if (n === 0) {
      this.counters.rejectedBlobs++;
      logEvent("warn", "session_state_rejected", { request_id: requestId, from, reason: why ?? "its tokens are not a prefix of the session's" });
      return null;
    }
    return { payload: rec.payload, kvTokens: n, from, record: bytes };
  }

  /** A fetched restore was not used (its request went away while queued): RAM keeps it again. */
  giveBack(requestId: string, r: Restore): void {
    if (r.from !== "ram") return; // still in the store
    for (const out of this.#ram.put(requestId, r.record)) this.#spill(out.requestId, out.record);
  }

  /** A restore was carried out (or failed in llama.cpp): counts it. */
  restored(r: Restore | null): void {
    if (r) this.#reclaimer.released(r.record.length);
    if (!r) this.counters.recomputed++;
    else if (r.from === "ram") this.counters.restoredFromRam++;
    else this.counters.restoredFromStore++;
  }

  /** A session this process does not hold: its persisted tokens, if any store has them. */
  async find(requestId: string): Promise<StoredSession | null> {
    if (!this.mayHave(requestId, "meta")) return null;
    const bytes = await this.#health.run("get", () => this.#tier!.store.get(sessionKey(requestId), "meta"));
    const rec = bytes && this.#decode(bytes, requestId);
    if (!rec || rec.header.requestId !== requestId) return null;
    if (rec.header.model !== this.#self.model) {
      logEvent("warn", "session_skipped", { request_id: requestId, reason: "its tokens belong to another model file" });
      return null;
    }
    if (this.#expired(rec.header.lastUsed, Date.now())) return null;
    return { tokens: rec.tokens, promptLen: rec.header.promptLen, lastUsed: rec.header.lastUsed };
  }

  /** Makes a session's tokens durable (called when a request finishes, before its response ends). */
  async persist(s: SessionSnapshot): Promise<void> {
    const tier = this.#tier;
    if (!tier) return;
    this.#tombstones.delete(s.requestId); // written again after a DELETE: a late KV write must not erase it
    const record = encodeRecord(this.#header(s, "meta", 0), s.tokens);
    const write = tier.put(s.requestId, "meta", record).then((ok) => void (ok && this.counters.metaWrites++));
    // a degraded store must not hold every response for its timeout: the write goes on behind it
    // (and heals the store when it succeeds)
    if (!this.degraded) await write;
  }

  /** Shutdown: one resident session's KV state (from stateBuffer()) straight to the store; true when durable. */
  async persistState(s: SessionSnapshot, kvTokens: number, state: Uint8Array): Promise<boolean> {
    const record = this.#kvRecord(s, kvTokens, state);
    return this.#tier ? this.#tier.put(s.requestId, "kv", record) : false;
  }

  /** Shutdown: every KV record still in RAM goes to the store; returns how many were written. */
  async flushRam(): Promise<number> {
    const tier = this.#tier;
    if (!tier) return 0;
    let n = 0;
    for (const e of [...this.#ram.entries(), ...[...this.#spilling].map(([requestId, record]) => ({ requestId, record }))]) {
      if (await tier.put(e.requestId, "kv", e.record)) n++;
    }
    return n;
  }

  /** Forgets this process's copy of a session's KV state (another replica has a newer one); true if there was one. */
  forgetRam(requestId: string): boolean {
    const record = this.#ram.take(requestId);
    if (record) this.#reclaimer.released(record.length);
    return record !== undefined || this.#spilling.delete(requestId);
  }

  /** Removes a session from RAM and the store; true if any tier had it. */
  async drop(requestId: string): Promise<boolean> {
    if (this.#spilling.has(requestId)) this.#tombstones.add(requestId);
    const inRam = this.#ram.delete(requestId) || this.#spilling.delete(requestId);
    if (!this.#tier) return inRam;
    const found = await this.#tier.delete(sessionKey(requestId));
    return inRam || found;
  }

  /** Where a session lives below the KV cache, and its bytes there. */
  tier(requestId: string): { tier: "ram" | "store" | null; bytes: number } {
    const ram = this.#ram.bytesOf(requestId) || (this.#spilling.get(requestId)?.length ?? 0);
    if (ram > 0) return { tier: "ram", bytes: ram };
    const key = sessionKey(requestId);
    if (this.index.has(key, "meta") || this.index.has(key, "kv")) return { tier: "store", bytes: this.index.bytes(key) };
    return { tier: null, bytes: 0 };
  }

  /**
   * A session idle past SESSION_TTL_S by this process's clock of it leaves RAM, and the store too
   * unless the store is shared: there another replica may have used it since, and the store's own
   * sweep (sweep()) decides by every replica's use.
   */
  async expire(requestId: string): Promise<void> {
    if (this.#tier?.store.shared) this.forgetRam(requestId);
    else await this.drop(requestId);
  }

  /** Drops from the store what has been idle longer than SESSION_TTL_S (by any writer's use, for a shared store). */
  async sweep(now: number, isLive: (requestId: string) => boolean = () => false): Promise<void> {
    await this.#tier?.sweep(now, isLive);
  }

  ramStats(): { ramSessions: number; ramBytes: number; storeSessions: number; storeBytes: number } {
    return { ramSessions: this.#ram.size + this.#spilling.size, ramBytes: this.#ram.bytes, storeSessions: this.index.size, storeBytes: this.index.totalBytes };
  }


  #expired(lastUsed: number, now: number): boolean {
    return this.#limits.ttlS > 0 && lastUsed < now - this.#limits.ttlS * 1000;
  }

  #decode(bytes: Uint8Array, what: string): SessionRecord | null {
    try {
      return decodeRecord(bytes);
    } catch (err) {
      if (!(err instanceof BlobError)) throw err;
      this.counters.rejectedBlobs++;
      logEvent("warn", "session_record_skipped", { what, reason: err.message });
      return null;
    }
  }
}
