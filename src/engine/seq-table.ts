// The request_id -> Sequence table: sequence-id slots, KV cell accounting and LRU eviction.
// Pure bookkeeping: it never calls the model. KV work it decides on (freeing a slot's cells)
// is queued in `kvOps` for the runner to perform before the next decode.
import { logEvent } from "../log.ts";
import type { KvOp, SlotMove } from "./kv-ops.ts";
import { PrefixIndex } from "./prefix-index.ts";
import { reusePlan, type ReusePlan } from "./prefix-reuse.ts";
import { SeqState, Sequence } from "./sequence.ts";
import { bestFreeSlot, compaction, slotVictims } from "./slot-layout.ts";

const allowed: Record<SeqState, readonly SeqState[]> = {
  [SeqState.Queued]: [SeqState.Running, SeqState.Idle, SeqState.Evicted],
  [SeqState.Running]: [SeqState.Idle],
  [SeqState.Idle]: [SeqState.Queued, SeqState.Evicted],
  [SeqState.Evicted]: [SeqState.Queued],
};

export interface TableLimits {
  /** llama sequence slots (running + resident idle) */
  slots: number;
  /** KV cells shared by all slots */
  kvCells: number;
  /** entries kept in the table, resident or not */
  maxEntries: number;
  /** log each eviction (default true) */
  logEvictions?: boolean;
  /** shortest shared prefix worth copying from an idle sequence into a new one (0: never) */
  minPrefixTokens?: number;
  /** most cells compact() may copy at once (default: no bound) */
  compactMaxCells?: number;
}

export class SequenceTable {
  readonly limits: TableLimits;
  /** insertion order = least recently used first */
  #byId = new Map<string, Sequence>();
  #freeSlots: number[];
  /** KV edits (freed slots, trims) to perform before the next decode */
  readonly kvOps: KvOp[] = [];
  evictions = 0;
  /** evicted entries dropped from the table by the maxEntries bound */
  trimmed = 0;
  logEvictions: boolean;
  /** the KV-resident idle sequences by their tokens in the KV cache, for shared-prefix reuse */
  readonly prefixes = new PrefixIndex<Sequence>();
  /** new sequences that started from a copied prefix, and the tokens they did not decode */
  prefixHits = 0;
  prefixTokens = 0;
  /** running sequences swapped into a hole to keep one run of slots */
  compactions = 0;
  /** new sequences that took over a one-off idle sequence's slot and cells (a continued conversation) */
  inherited = 0;

  constructor(limits: TableLimits) {
    this.limits = limits;
    this.logEvictions = limits.logEvictions ?? true;
    this.#freeSlots = Array.from({ length: limits.slots }, (_, i) => limits.slots - 1 - i);
  }

  get(requestId: string): Sequence | undefined {
    return this.#byId.get(requestId);
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Adds a sequence: a new one (Queued), or one known only from the session store (Evicted). */
  add(seq: Sequence, state: typeof SeqState.Queued | typeof SeqState.Evicted = SeqState.Queued): void {
    if (this.#byId.has(seq.requestId)) throw new Error(`sequence ${seq.requestId} exists`);
    seq.state = state;
    this.#byId.set(seq.requestId, seq);
    this.touch(seq);
    this.#trimEntries();
  }

  touch(seq: Sequence): void {
    seq.lastUsed = Date.now();
    this.#byId.delete(seq.requestId);
    this.#byId.set(seq.requestId, seq);
  }

  /** The one place a sequence changes state. */
  transition(seq: Sequence, to: SeqState): void {
    if (!allowed[seq.state].includes(to)) throw new Error(`sequence ${seq.requestId}: ${seq.state} -> ${to} is not allowed`);
    if (to === SeqState.Evicted) this.#releaseSlot(seq);
    if (to !== SeqState.Running) seq.reserve = 0;
    seq.state = to;
    this.touch(seq);
    this.#reindex(seq);
  }

  /** An idle sequence with cells is findable by its KV tokens; any other is not. */
  #reindex(seq: Sequence): void {
    if (seq.state === SeqState.Idle && seq.seqId >= 0 && seq.nPast > 0 && this.#byId.get(seq.requestId) === seq) {
      this.prefixes.insert(seq, seq.tokens.view().subarray(0, seq.nPast));
    } else {
      this.prefixes.remove(seq);
    }
  }

  /** Removes an idle or evicted sequence; false if absent or busy. */
  drop(requestId: string): boolean {
    const seq = this.#byId.get(requestId);
    if (!seq || seq.busy) return false;
    this.#releaseSlot(seq); // (out of the prefix index with its cells)
    this.#byId.delete(requestId);
    return true;
  }

  /** Removes a queued sequence that never started decoding (its request was withdrawn). */
  withdraw(seq: Sequence): void {
    if (seq.state !== SeqState.Queued || this.#byId.get(seq.requestId) !== seq) throw new Error(`withdraw of ${seq.state} sequence ${seq.requestId}`);
    this.#releaseSlot(seq);
    this.#byId.delete(seq.requestId);
  }

  /**
   * Keeps the first `length` tokens of an idle sequence (a stream its client stopped reading):
   * later tokens leave the history and their KV cells. At least the last kept token stays pending,
   * so a continuation has logits to start from.
   */
  truncate(seq: Sequence, length: number): void {
    if (seq.busy) throw new Error(`truncate of ${seq.state} sequence ${seq.requestId}`);
    if (length >= seq.length) return;
    seq.tokens.truncate(length);
    const keep = Math.max(0, length - 1);
    if (seq.seqId >= 0 && seq.nPast > keep) {
      seq.nPast = keep;
      this.kvOps.push({ kind: "rm", seq: seq.seqId, from: keep });
    }
    this.#reindex(seq);
  }

  /** KV cells held or reserved: running sequences count their reserve, idle ones their cells. */
  cellsCommitted(): number {
    let n = 0;
    for (const s of this.#byId.values()) {
      if (s.state === SeqState.Running) n += s.reserve;
      else if (s.seqId >= 0) n += s.nPast;
    }
    return n;
  }

  /**
   * Tries to give `seq` a slot, `extraSlots` more slots (beams) and `reserve` cells, evicting idle
   * sequences as needed (never a busy one). Returns the extra slots, or null, evicting nothing,
   * when it cannot fit. Victims: least recently used first for cells; for slots, the older half of
   * the idle sequences counts as equally old, and among those a slot next to a busy one goes first
   * (so running sequences stay in consecutive slots, see #takeSlot).
   */
  admit(seq: Sequence, reserve: number, extraSlots = 0): number[] | null {
    const own = seq.seqId >= 0 ? seq.nPast : 0;
    const fresh = seq.seqId < 0 && !seq.restore && seq.nPast === 0;
    const plan = fresh ? reusePlan(this.prefixes, this.limits.minPrefixTokens ?? 0, seq) : null;
    const heir = plan?.kind === "inherit" ? plan : null;
    let needCells = this.cellsCommitted() - own - (heir?.src.nPast ?? 0) + reserve - this.limits.kvCells;
    let needSlots = extraSlots + (seq.seqId < 0 && !heir ? 1 : 0) - this.#freeSlots.length;
    const idle = [...this.#byId.values()].filter((s) => s !== seq && s !== heir?.src && s.state === SeqState.Idle && s.seqId >= 0);
    const victims: Sequence[] = [];
    while (needCells > 0 && victims.length < idle.length) {
      const v = idle[victims.length]!;
      victims.push(v);
      needCells -= v.nPast;
      needSlots--;
    }
    if (needCells > 0) return null;
    if (needSlots > 0) {
      const rest = idle.slice(victims.length);
      if (rest.length < needSlots) return null;
      victims.push(...slotVictims(rest.slice(0, Math.max(needSlots, Math.ceil(rest.length / 2))), needSlots, this.#busySlots(), this.limits.slots));
    }
    for (const v of victims) this.evict(v);
    if (heir) this.#inherit(seq, heir.src, heir.keep);
    else if (seq.seqId < 0) {
      seq.seqId = this.#takeSlot();
      if (seq.restore) this.kvOps.push({ kind: "restore", seq: seq.seqId, target: seq, keep: Math.min(seq.restore.kvTokens, seq.length - 1) });
      else if (fresh) this.#copyPrefix(seq, plan);
    }
    seq.reserve = reserve;
    return Array.from({ length: extraSlots }, () => this.#takeSlot());
  }

  /**
   * A new sequence starts from a copy of an idle sequence's first cells: `planned` before the
   * evictions, planned again only if they took its source (a shorter match may be left).
   */
  #copyPrefix(seq: Sequence, planned: ReusePlan | null): void {
    const plan = planned === null || planned.src.seqId >= 0 ? planned : reusePlan(this.prefixes, this.limits.minPrefixTokens ?? 0, seq);
    if (plan?.kind !== "copy") return;
    this.kvOps.push({ kind: "fork", src: plan.src.seqId, target: seq, keep: plan.keep });
    seq.nPast = plan.keep;
    this.prefixHits++;
    this.prefixTokens += plan.keep;
  }

  /** `seq` takes over the slot and first `keep` cells of the one-off `src`, which leaves the table: no copy, no stale duplicate. */
  #inherit(seq: Sequence, src: Sequence, keep: number): void {
    this.prefixes.remove(src);
    this.#byId.delete(src.requestId);
    seq.seqId = src.seqId;
    if (src.nPast > keep) this.kvOps.push({ kind: "rm", seq: seq.seqId, from: keep });
    src.seqId = -1;
    src.nPast = 0;
    seq.nPast = keep;
    this.prefixHits++;
    this.prefixTokens += keep;
    this.inherited++;
  }

  /** A free slot next to a busy one when there is such, else the lowest (see slot-layout.ts). */
  #takeSlot(): number {
    return this.#freeSlots.splice(bestFreeSlot(this.#freeSlots, this.#busySlots(), this.limits.slots), 1)[0]!;
  }

  /**
   * Swaps running sequences into one run of consecutive slots when a finished one left a hole
   * (slot-layout.ts: llama.cpp decodes each run as its own graph). An idle sequence in the way
   * trades places with it. The copies are queued as one KV op; returns how many swaps. Called only
   * when the scheduler finds the running slots scattered (Scheduler.scattered): it reads every entry.
   */
  compact(): number {
    const residents = [...this.#byId.values()].filter((s) => s.seqId >= 0).map((seq) => ({ seqId: seq.seqId, running: seq.state === SeqState.Running, cells: seq.nPast, seq }));
    const swaps = compaction(residents, this.limits.slots, this.limits.compactMaxCells);
    if (swaps.length === 0) return 0;
    const moves: SlotMove[] = [];
    for (const { running: { seq }, to, occupant } of swaps) {
      const from = seq.seqId;
      moves.push({ target: seq, from, to, nPast: seq.nPast });
      seq.seqId = to;
      if (occupant) {
        moves.push({ target: occupant.seq, from: to, to: from, nPast: occupant.seq.nPast });
        occupant.seq.seqId = from;
      } else {
        this.#freeSlots.splice(this.#freeSlots.indexOf(to), 1);
        this.#freeSlots.push(from);
      }
    }
    this.kvOps.push({ kind: "move", moves });
    this.compactions += swaps.length;
    return swaps.length;
  }

  #busySlots(): Set<number> {
    const busy = new Set<number>();
    for (const s of this.#byId.values()) if (s.busy && s.seqId >= 0) busy.add(s.seqId);
    return busy;
  }

  /** Returns borrowed slots (e.g. losing beams): their cells are cleared before the next decode. */
  releaseSlots(ids: readonly number[]): void {
    for (const id of ids) {
      this.kvOps.push({ kind: "rm", seq: id, from: -1 });
      this.#freeSlots.push(id);
    }
  }

  /** Slot `dst` becomes a copy of slot `src` (a beam fork): cleared, then copied, before the next decode. */
  copySlot(src: number, dst: number): void {
    this.kvOps.push({ kind: "rm", seq: dst, from: -1 }, { kind: "cp", src, dst });
  }

  /** Moves a running sequence to another (borrowed) slot holding its first `nPast` tokens. */
  rebind(seq: Sequence, seqId: number, nPast: number): void {
    if (seq.state !== SeqState.Running) throw new Error(`rebind of ${seq.state} sequence ${seq.requestId}`);
    seq.seqId = seqId;
    seq.nPast = nPast;
    this.kvOps.push({ kind: "rm", seq: seqId, from: nPast });
  }

  /**
   * Reclaims an idle sequence's KV cells. Its state is saved first (the session tiers keep it for
   * a restore); its tokens stay, so a continuation can always decode them again instead.
   */
  evict(seq: Sequence): void {
    if (seq.ephemeral) {
      // a one-off sequence has no session to keep: its cells are simply reused
      this.#releaseSlot(seq);
      this.#byId.delete(seq.requestId);
      this.evictions++;
      return;
    }
    const cells = seq.nPast;
    if (cells > 0) this.kvOps.push({ kind: "save", seq: seq.seqId, target: seq, nPast: cells });
    this.transition(seq, SeqState.Evicted);
    this.evictions++;
    if (this.logEvictions) logEvent("warn", "evicted", { request_id: seq.requestId, kv_cells: cells }, "engine");
  }

  /** Every sequence, least recently used first. */
  all(): IterableIterator<Sequence> {
    return this.#byId.values();
  }

  /** Evicts every idle resident sequence (used when llama.cpp reports no KV slot). */
  evictAllIdle(): number {
    let n = 0;
    for (const s of [...this.#byId.values()]) if (s.state === SeqState.Idle && s.seqId >= 0) (this.evict(s), n++);
    return n;
  }

  #releaseSlot(seq: Sequence): void {
    if (seq.seqId < 0) return;
    this.prefixes.remove(seq);
    this.releaseSlots([seq.seqId]);
    seq.seqId = -1;
    seq.nPast = 0;
  }

  /**
   * Past maxEntries, the oldest evicted sequences leave the table. Their tokens and state stay in
   * the session tiers when there is a store (a later request finds them there); either way each
   * is counted and logged.
   */
  #trimEntries(): void {
    for (const s of this.#byId.values()) {
      if (this.#byId.size <= this.limits.maxEntries) return;
      if (s.state !== SeqState.Evicted) continue;
      this.#byId.delete(s.requestId);
      this.trimmed++;
      logEvent("info", "table_entry_trimmed", { request_id: s.requestId, reason: `more than ${this.limits.maxEntries} sessions in the table` }, "engine");
    }
  }
}
