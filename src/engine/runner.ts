// Runs a plan on the model: clears released KV slots, packs one llama_batch, decodes.
// It decides nothing; the scheduler chose what goes in.
import { Batch, type Context } from "../native/index.ts";
import type { Plan } from "./scheduler.ts";

export class Runner {
  readonly ctx: Context;
  readonly #batch: Batch;
  /** microseconds spent inside llama_decode, cumulative */
  decodeUs = 0;

  constructor(ctx: Context, batchSize: number) {
    this.ctx = ctx;
    this.#batch = new Batch(batchSize, 1);
  }

  /** Returns llama_decode's status (0 = ok). Sets each logits entry's `row`. */
  run(plan: Plan): number {
    for (const seqId of plan.releases) this.ctx.seqRm(seqId);
    const batch = this.#batch;
    batch.clear();
    for (const e of plan.entries) {
      const seq = e.job.seq;
      const ids = seq.tokens.view();
      const last = e.start + e.count - 1;
      for (let p = e.start; p <= last; p++) {
        const row = batch.add(ids[p]!, p, seq.seqId, e.logits && p === last);
        if (row >= 0) e.row = row;
      }
    }
    if (batch.length === 0) return 0;
    const t0 = performance.now();
    const status = this.ctx.decode(batch);
    this.decodeUs += (performance.now() - t0) * 1000;
    return status;
  }

  free(): void {
    this.#batch.free();
  }
}
