// Runs a plan on the model: KV edits first, then one llama_batch, then decode.
// It decides nothing; the scheduler chose what goes in.
import { errorFields, logEvent } from "../log.ts";
import { Batch, type Context } from "../native/index.ts";
import type { Plan, PlanEntry } from "./scheduler.ts";
import type { KvOp, SlotMove } from "./kv-ops.ts";
import type { Sequence } from "./sequence.ts";

/** Where the runner hands saved KV state and restore outcomes (the engine's session policy). */
export interface StateSink {
  /** a buffer for `size` bytes of `target`'s state (written in place, then handed to saved()) */
  stateBuffer(target: Sequence, nPast: number, size: number): Uint8Array;
  saved(target: Sequence, nPast: number, state: Uint8Array): void;
  restored(target: Sequence, keep: number, ok: boolean): void;
}

const bySeqId = (a: PlanEntry, b: PlanEntry) => a.seqId - b.seqId;

export class Runner {
  readonly ctx: Context;
  readonly #batch: Batch;
  /** microseconds spent inside llama_decode, cumulative */
  decodeUs = 0;
  /** runs of consecutive seq ids over all steps (with per-sequence KV streams, one graph pass each) */
  idRuns = 0;

  /** KV edits queued by policy code (the sequence table); emptied before every decode */
  readonly #kvOps: KvOp[];

  readonly #sink: StateSink;

  constructor(ctx: Context, batchSize: number, kvOps: KvOp[], sink: StateSink) {
    this.ctx = ctx;
    this.#batch = new Batch(batchSize, 1);
    this.#kvOps = kvOps;
    this.#sink = sink;
  }

  applyKvOps(): void {
    for (const op of this.#kvOps) {
      switch (op.kind) {
        case "rm": this.ctx.seqRm(op.seq, op.from, -1); break;
        case "cp": this.ctx.seqCp(op.src, op.dst); break;
        case "save": this.#save(op.seq, op.target, op.nPast); break;
        case "restore": this.#restore(op.seq, op.target, op.keep); break;
        case "fork": this.#fork(op.src, op.target, op.keep); break;
        case "move": this.#move(op.moves); break;
        default: {
          const never: never = op;
          throw new Error(`unknown KV op ${JSON.stringify(never)}`);
        }
      }
    }
    this.#kvOps.length = 0;
  }

  /** Serialises a resident sequence's KV state (llama_state_seq_get_data) into the buffer the sink lays out. */
  saveState(target: Sequence): Uint8Array {
    return this.ctx.saveSequenceInto(target.seqId, (size) => this.#sink.stateBuffer(target, target.nPast, size));
  }

  #save(seqId: number, target: Sequence, nPast: number): void {
    // a failed save only costs a re-decode later: the tokens are kept either way
    let state: Uint8Array | null = null;
    try {
      state = this.ctx.saveSequenceInto(seqId, (size) => this.#sink.stateBuffer(target, nPast, size));
    } catch (err) {
      logEvent("error", "state_save_failed", { slot: seqId, request_id: target.requestId, ...errorFields(err) }, "engine");
    }
    if (state && state.length > 0) this.#sink.saved(target, nPast, state);
  }

  #restore(seqId: number, target: Sequence, keep: number): void {
    this.#sink.restored(target, keep, this.#load(seqId, target.restore!.payload, keep));
  }

  /**
   * Loads a serialised sequence state into slot `seqId` and keeps its first `keep` tokens' cells.
   * False, with the slot left empty, when llama.cpp refused it or it held fewer cells than that.
   */
  #load(seqId: number, state: Uint8Array, keep: number): boolean {
    let ok = state.length > 0 && this.ctx.restoreSequence(seqId, state);
    // llama.cpp may accept a state that holds fewer cells than its header said: then it did not restore
    if (ok && this.ctx.seqPosMax(seqId) + 1 < keep) ok = false;
    if (ok && this.ctx.seqPosMax(seqId) + 1 > keep) ok = this.ctx.seqRm(seqId, keep, -1); // cells past the kept tokens
    if (!ok) this.ctx.seqRm(seqId, -1, -1); // a failed restore may leave part of the cells
    return ok;
  }

  /**
   * A shared prefix: the source slot's state (llama_state_seq_get_data, only its own cells) goes into
   * the target's slot, trimmed to `keep` tokens. Not llama_memory_seq_cp: across per-sequence KV
   * streams that copies the whole stream buffer and makes llama.cpp re-reserve its compute graph
   * (~200 ms a copy on the bench model). If it fails the target simply decodes its whole prompt.
   */
  #fork(src: number, target: Sequence, keep: number): void {
    const state = this.ctx.saveSequenceInto(src, (size) => (this.#scratch.length >= size ? this.#scratch : (this.#scratch = new Uint8Array(size))).subarray(0, size));
    if (this.#load(target.seqId, state, keep)) return;
    target.nPast = 0;
    logEvent("warn", "prefix_copy_failed", { slot: target.seqId, from_slot: src, tokens: keep }, "engine");
  }

  /**
   * Sequences change slots (llama_state_seq_get/set_data of their own cells, as #fork): every source
   * is read, then cleared, then each state is written to its new slot, so two sequences can trade
   * places. A sequence whose state did not load decodes its tokens again.
   */
  #move(moves: SlotMove[]): void {
    const states = moves.map((m) => {
      if (m.nPast <= 0) return null;
      try {
        return this.ctx.saveSequence(m.from);
      } catch {
        return null;
      }
    });
    for (const m of moves) this.ctx.seqRm(m.from, -1, -1);
    moves.forEach((m, i) => {
      const state = states[i];
      if (m.nPast <= 0 || (state && this.#load(m.to, state, m.nPast))) return;
      m.target.nPast = 0;
      logEvent("warn", "slot_move_failed", { slot: m.to, from_slot: m.from, request_id: m.target.requestId, tokens: m.nPast }, "engine");
    });
  }

  /** scratch for prefix copies, grown to the largest state copied */
  #scratch = new Uint8Array(0);

  /** Returns llama_decode's status (0 = ok). Sets each logits entry's `row`. */
  run(plan: Plan): number {
    this.applyKvOps();
    const batch = this.#batch;
    batch.clear();
    // Sequence-id order: with per-sequence KV streams (KV_UNIFIED=false) llama.cpp puts only runs of
    // consecutive seq ids, in batch order, into one ubatch; any other order splits the step into
    // several graph evaluations (16 sequences: 22 ms in order, 71 ms shuffled, on the bench model).
    // In place: postprocessing finds rows through each entry, not through the order.
    plan.entries.sort(bySeqId);
    let prev = -2;
    for (const e of plan.entries) {
      if (e.seqId !== prev && e.seqId !== prev + 1) this.idRuns++;
      prev = e.seqId;
      const own = e.job.seq.tokens;
      const last = e.count - 1;
      for (let k = 0; k <= last; k++) {
        const token = e.beam >= 0 ? e.token : own.at(e.pos + k);
        const row = batch.add(token, e.pos + k, e.seqId, e.logits && k === last);
        if (row >= 0) e.row = row;
      }
    }
    const t0 = performance.now();
    const status = this.ctx.decode(batch);
    this.decodeUs += (performance.now() - t0) * 1000;
    return status;
  }

  free(): void {
    this.#batch.free();
  }
}
