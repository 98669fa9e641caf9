// The engine's side of the session tiers: it connects the sequence table to the SessionManager.
// Sequences leaving the KV cache hand their state down; evicted or stored ones fetch it back
// before admission; finished requests persist their tokens; shutdown writes every KV state.
import { logEvent } from "../log.ts";
import type { SessionManager } from "../sessions/manager.ts";
import type { SessionSnapshot, SessionSource } from "../sessions/session-types.ts";
import type { CachedSequenceInfo, SessionList } from "./messages.ts";
import type { Runner, StateSink } from "./runner.ts";
import type { SequenceTable } from "./seq-table.ts";
import { SeqState, Sequence } from "./sequence.ts";

const snapshot = (seq: Sequence): SessionSnapshot => ({
  requestId: seq.requestId, tokens: seq.tokens.view().slice(), promptLen: seq.promptLen, lastUsed: seq.lastUsed,
});

export class EngineSessions implements StateSink {
  readonly manager: SessionManager;
  readonly #table: SequenceTable;
  readonly #nVocab: number;
  #sweeping = false;
  /** meta writes in flight (shutdown waits for them) */
  readonly #writes = new Set<Promise<void>>();
  /** SESSION_KV_WRITES=finish: a finished request's KV state is written too */
  kvOnFinish = false;

  constructor(manager: SessionManager, table: SequenceTable, nVocab: number) {
    this.manager = manager;
    this.#table = table;
    this.#nVocab = nVocab;
  }

  stateBuffer(target: Sequence, nPast: number, size: number): Uint8Array {
    return this.manager.stateBuffer(snapshot(target), nPast, size);
  }

  saved(target: Sequence, nPast: number, state: Uint8Array): void {
    this.manager.saved(snapshot(target), nPast, state);
  }

  restored(target: Sequence, keep: number, ok: boolean): void {
    if (!ok) logEvent("warn", "session_restore_failed", { request_id: target.requestId, reason: "llama_state_seq_set_data refused the state; decoding the tokens again" });
    target.nPast = ok ? keep : 0;
    target.restoreFailed = !ok;
    this.manager.restored(ok ? target.restore : null);
    target.restore = null;
  }

  /**
   * Sessions the table does not hold but the store does (a restart, another replica) join it as
   * evicted. Synchronous (no promise) when no store needs asking: then a submit is handled
   * within its message, as without sessions.
   */
  loadStored(requestIds: string[]): void | Promise<void> {
    const ask = requestIds.filter((id) => !this.#table.get(id) && this.manager.mayHave(id, "meta"));
    if (ask.length === 0) return;
    return Promise.all(ask.map(async (id) => {
      const found = await this.manager.find(id);
      if (!found || this.#table.get(id)) return;
      if (found.tokens.some((t) => t < 0 || t >= this.#nVocab)) { // another vocabulary's record: not ours to continue
        logEvent("warn", "session_record_skipped", { request_id: id, reason: "its tokens are outside this model's vocabulary" });
        return;
      }
      this.#table.add(new Sequence(id, found.tokens, this.#nVocab, found.promptLen), SeqState.Evicted);
    })).then(() => {});
  }

  /**
   * Where each queued sequence starts from; evicted ones get the state to restore, when there is
   * one. Synchronous unless a state has to come from the store.
   */
  prepare(seqs: Sequence[], fresh: boolean[]): SessionSource[] | Promise<SessionSource[]> {
    const out: SessionSource[] = [];
    const fetches: Promise<void>[] = [];
    const settle = (i: number, seq: Sequence) => {
      if (!seq.restore) this.manager.restored(null);
      out[i] = seq.restore ? "restored" : "recomputed";
    };
    seqs.forEach((seq, i) => {
      if (fresh[i]) out[i] = "new";
      else if (seq.seqId >= 0) out[i] = "continued";
      else if ((seq.restore = this.manager.takeFromRam(seq.requestId, seq.tokens.view())) || !this.manager.mayHave(seq.requestId, "kv")) settle(i, seq);
      else fetches.push(this.manager.fromStore(seq.requestId, seq.tokens.view()).then((r) => ((seq.restore = r), settle(i, seq))));
    });
    return fetches.length === 0 ? out : Promise.all(fetches).then(() => out);
  }

  /** A queued sequence's request went away before admission: an unused restore goes back to RAM. */
  unused(seq: Sequence): void {
    if (seq.restore) this.manager.giveBack(seq.requestId, seq.restore);
    seq.restore = null;
  }

  /**
   * Another replica wrote these sessions since this one did (their leases said so): the copies
   * held here, in the KV cache or RAM, are out of date. They are forgotten, so that the store's
   * current version is loaded instead (the store itself is left alone).
   */
  forgetLocal(requestIds: string[]): void {
    for (const id of requestIds) {
      const seq = this.#table.get(id);
      if (seq?.busy) continue; // cannot be: this replica holds its lease now
      const inTable = this.#table.drop(id);
      if (this.manager.forgetRam(id) || inTable) logEvent("info", "session_superseded", { request_id: id, reason: "another replica continued it since; loading its current version from the store" });
    }
  }

  /** Makes the session's tokens durable (and, with kvOnFinish, its KV state); resolves when written (never rejects). */
  persist(seq: Sequence, runner: Runner): Promise<void> {
    const writes = [this.manager.persist(snapshot(seq))];
    if (this.kvOnFinish && seq.seqId >= 0 && seq.nPast > 0) writes.push(this.#persistKv(seq, runner));
    const p = writes.length === 1 ? writes[0]! : Promise.all(writes).then(() => {});
    this.#writes.add(p);
    return p.finally(() => this.#writes.delete(p));
  }

  async #persistKv(seq: Sequence, runner: Runner): Promise<void> {
    let state: Uint8Array;
    try {
      // edits still queued for the cache (a beam's copy into its slot, a truncation) land first:
      // the state must hold exactly the sequence's cells
      runner.applyKvOps();
      state = runner.saveState(seq);
    } catch (err) {
      return void logEvent("error", "state_save_failed", { request_id: seq.requestId, reason: (err as Error).message }, "engine");
    }
    const write = this.manager.persistState(snapshot(seq), seq.nPast, state).then(() => {});
    if (!this.manager.degraded) await write; // a degraded store must not hold the response
  }

  async drop(requestId: string): Promise<boolean> {
    const seq = this.#table.get(requestId);
    if (seq?.busy) return false;
    const inTable = this.#table.drop(requestId);
    return (await this.manager.drop(requestId)) || inTable;
  }

  async describe(requestId: string): Promise<CachedSequenceInfo | null> {
    const seq = this.#table.get(requestId);
    if (seq?.ephemeral) return null; // one-off: not a session
    if (seq) return this.#info(seq);
    const found = await this.manager.find(requestId);
    if (!found) return null;
    return {
      request_id: requestId, state: "evicted", tier: "store", state_bytes: this.manager.tier(requestId).bytes, prompt_tokens: found.promptLen,
      generated_tokens: found.tokens.length - found.promptLen, kv_cells: 0, last_used: new Date(found.lastUsed).toISOString(),
    };
  }

  #info(seq: Sequence): CachedSequenceInfo {
    const below = this.manager.tier(seq.requestId);
    const tier = seq.seqId >= 0 ? "kv" : seq.restore ? seq.restore.from : below.tier ?? "store";
    return {
      request_id: seq.requestId, state: seq.state, tier, state_bytes: seq.seqId >= 0 ? 0 : seq.restore?.record.length ?? below.bytes,
      prompt_tokens: seq.promptLen, generated_tokens: seq.generated, kv_cells: seq.seqId >= 0 ? seq.nPast : 0, last_used: new Date(seq.lastUsed).toISOString(),
    };
  }

  /** Sessions in every tier, ordered by request_id, `limit` after the cursor `after`. */
  list(after: string, limit: number): SessionList {
    const rows = new Map<string, SessionList["sessions"][number]>();
    for (const s of this.manager.index.named()) {
      rows.set(s.requestId, { request_id: s.requestId, state: "evicted", tier: "store", state_bytes: s.bytes, last_used: new Date(s.lastUsed).toISOString() });
    }
    for (const seq of this.#table.all()) {
      if (seq.ephemeral) continue;
      const i = this.#info(seq);
      rows.set(seq.requestId, { request_id: i.request_id, state: i.state, tier: i.tier, state_bytes: i.state_bytes, last_used: i.last_used });
    }
    const ids = [...rows.keys()].filter((id) => id > after).sort();
    const page = ids.slice(0, limit);
    return { sessions: page.map((id) => rows.get(id)!), next: ids.length > limit ? page[page.length - 1]! : null, total: rows.size };
  }

  /** SESSION_TTL_S: idle sessions past it leave every tier (one sweep at a time). */
  async sweep(now: number, ttlS: number): Promise<void> {
    if (ttlS <= 0 || this.#sweeping) return;
    this.#sweeping = true;
    try {
      await this.#sweep(now, ttlS);
    } finally {
      this.#sweeping = false;
    }
  }

  async #sweep(now: number, ttlS: number): Promise<void> {
    const cutoff = now - ttlS * 1000;
    for (const seq of [...this.#table.all()]) {
      // the table may have changed while the previous drop waited on the store
      if (this.#table.get(seq.requestId) !== seq || seq.busy || seq.lastUsed >= cutoff) continue;
      logEvent("info", "session_expired", { request_id: seq.requestId, idle_s: Math.round((now - seq.lastUsed) / 1000) });
      this.manager.counters.expired++;
      this.#table.drop(seq.requestId);
      await this.manager.expire(seq.requestId); // RAM, and a store only this process writes
    }
    await this.manager.sweep(now, (id) => this.#table.get(id) !== undefined);
  }

  /** Shutdown: every resident session's KV state, then RAM's, to the store; waits for meta writes. */
  async shutdown(runner: Runner): Promise<{ written: number; failed: number }> {
    await Promise.all(this.#writes);
    let written = 0, failed = 0;
    if (!this.manager.persistent) return { written, failed };
    for (const seq of [...this.#table.all()]) {
      if (seq.busy || seq.ephemeral || seq.seqId < 0 || seq.nPast === 0) continue;
      const ok = await this.manager.persistState(snapshot(seq), seq.nPast, runner.saveState(seq));
      ok ? written++ : failed++;
    }
    written += await this.manager.flushRam();
    return { written, failed };
  }
}
