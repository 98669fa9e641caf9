// The step's third part: what the decoded rows mean for each job. A sampling job gets its next
// token (constraint mask first, pick-token.ts), a beam job its beams advanced once all its rows are
// in; a job that ends is handed back to the engine, which owns finishing and failing.
import type { Context, Model } from "../native/index.ts";
import type { Settings } from "../config.ts";
import { advanceBeams, startBeams } from "./beam-slots.ts";
import type { BeamJob, Job } from "./job.ts";
import type { FinishReason } from "./messages.ts";
import { pickToken } from "./pick-token.ts";
import type { Plan } from "./scheduler.ts";
import type { SequenceTable } from "./seq-table.ts";
import { tokenLogprob, type TextOut } from "./text-out.ts";
import { Utf8Guard } from "./utf8.ts";

export interface JobEnds {
  finish(job: Job, reason: FinishReason): void;
  /** the model produced a non-finite logit for this job */
  broken(job: Job): void;
}

export class Postprocess {
  tokensGenerated = 0;
  /** keeps constrained text valid UTF-8 (pick-token.ts) */
  readonly #utf8: Utf8Guard;

  constructor(
    private readonly model: Model,
    private readonly ctx: Context,
    private readonly table: SequenceTable,
    private readonly out: TextOut,
    private readonly settings: Settings,
    private readonly ends: JobEnds,
  ) {
    this.#utf8 = new Utf8Guard((t) => model.tokenPiece(t), model.info.nVocab);
  }

  /** After a successful decode of `plan`: every entry's cells counted, every logits row used. */
  run(plan: Plan): void {
    let beamJobs: BeamJob[] | null = null; // only beam steps allocate
    for (const e of plan.entries) {
      const { job } = e;
      if (e.beam < 0) job.seq.nPast += e.count;
      if (!e.logits || job.finish) continue;
      if (job.kind === "sample") this.#sampleNext(job, e.row);
      else if (!Number.isFinite(this.ctx.logit(e.row, this.ctx.argmaxRow(e.row)))) this.ends.broken(job);
      else if (e.beam < 0) this.#beamDone(job, startBeams(job, this.ctx.logitsRow(e.row), this.table));
      else {
        job.rows[e.beam] = this.ctx.logitsRow(e.row); // rows by beam index; the batch order is the runner's
        if (e.beam === job.beams.length - 1) (beamJobs ??= []).push(job); // once per job; advanced after every row is in
      }
    }
    if (beamJobs) for (const job of beamJobs) this.#beamDone(job, advanceBeams(job, this.table));
  }

  #sampleNext(job: Job & { kind: "sample" }, row: number): void {
    const seq = job.seq;
    // The model is broken when the raw row's best logit is not finite (NaN weights: an all-NaN row
    // has token 0 as its argmax). Checked before the sampler, whose processing of extreme settings
    // is float-safe on its own; the greedy path's argmax is the token itself.
    const best = this.ctx.argmaxRow(row);
    if (!Number.isFinite(this.ctx.logit(row, best))) return this.ends.broken(job);
    const pick = pickToken(this.ctx, job, row, best, this.#utf8);
    if ("complete" in pick) return this.ends.finish(job, "eos"); // the constrained text is whole: only an end may follow
    const { token, scored } = pick;
    seq.tokens.push(token);
    this.tokensGenerated++;
    if (this.model.isEog(token)) return this.ends.finish(job, "eos");
    if (scored) job.pendingLogprobs.push(tokenLogprob(this.model, scored, token, job.logprobs!));
    this.out.token(job, token);
    if (job.produced >= job.maxNew) this.ends.finish(job, "length");
    else if (seq.length >= this.settings.ctxSize) this.ends.finish(job, "context");
  }

  /** After a beam step: stream newly settled tokens; finish when the search is done. */
  #beamDone(job: BeamJob, done: boolean): void {
    this.tokensGenerated += job.beams.length;
    const settled = job.search.settledTokens();
    if (settled.length > job.emitted) {
      this.out.tokens(job, settled.slice(job.emitted));
      job.emitted = settled.length;
    }
    if (done) this.ends.finish(job, job.search.finalize().finishedByEos ? "eos" : "length");
  }
}
