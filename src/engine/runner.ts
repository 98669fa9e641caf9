// Runs a plan on the model: KV edits first, then one llama_batch, then decode.
// It decides nothing; the scheduler chose what goes in.
import { Batch, type Context } from "../native/index.ts";
import type { Plan, PlanEntry } from "./scheduler.ts";
import type { KvOp } from "./seq-table.ts";

const bySeqId = (a: PlanEntry, b: PlanEntry) => a.seqId - b.seqId;

export class Runner {
  readonly ctx: Context;
  readonly #batch: Batch;
  /** microseconds spent inside llama_decode, cumulative */
  decodeUs = 0;

  /** KV edits queued by policy code (the sequence table); emptied before every decode */
  readonly #kvOps: KvOp[];

  constructor(ctx: Context, batchSize: number, kvOps: KvOp[]) {
    this.ctx = ctx;
    this.#batch = new Batch(batchSize, 1);
    this.#kvOps = kvOps;
  }

  applyKvOps(): void {
    for (const op of this.#kvOps) {
      if (op.kind === "rm") this.ctx.seqRm(op.seq, op.from, -1);
      else this.ctx.seqCp(op.src, op.dst);
    }
    this.#kvOps.length = 0;
  }

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
    for (const e of plan.entries) {
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
