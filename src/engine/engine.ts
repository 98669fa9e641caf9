// The engine: owns the table, scheduler and runner; one step = schedule, run, postprocess.
import type { Settings } from "../config.ts";
import { DecodeStatus, type Context, type ContextOptions, type Model } from "../native/index.ts";
import { advanceBeams, concludeBeams, startBeams } from "./beam-slots.ts";
import type { BeamJob, Job } from "./job.ts";
import type { CachedSequenceInfo, EngineStats, FinishReason, FromEngine, GenerationConfig, PromptSpec } from "./messages.ts";
import { makeJob, RequestError, resolveSequences } from "./requests.ts";
import { Runner } from "./runner.ts";
import { Scheduler, type Plan } from "./scheduler.ts";
import { SequenceTable } from "./seq-table.ts";
import { SeqState, type Sequence } from "./sequence.ts";

export type Emit = (msg: FromEngine) => void;

/** TextDecoder option for pieces that may end inside a UTF-8 character (one object, not one per token) */
const STREAM = { stream: true } as const;

/** The llama context the settings ask for (used by the worker, and by the in-process profile). */
export function contextOptions(settings: Settings): ContextOptions {
  return {
    nCtx: settings.kvCells, nBatch: settings.batchSize, nSeqMax: settings.cacheSequences, threads: settings.threads || undefined,
    threadsBatch: settings.threadsBatch || undefined, flashAttn: settings.flashAttn, kvUnified: settings.kvUnified, threadPoll: settings.threadPoll,
  };
}

export class Engine {
  readonly model: Model;
  readonly ctx: Context;
  readonly settings: Settings;
  readonly table: SequenceTable;
  readonly scheduler: Scheduler;
  readonly runner: Runner;
  readonly #emit: Emit;
  readonly #jobs = new Map<number, Job[]>();
  steps = 0;
  tokensGenerated = 0;
  /** wall time of steps and of posting their messages, microseconds (timed by whoever runs the loop) */
  stepUs = 0;
  postUs = 0;
  sequenceSteps = 0;

  constructor(model: Model, ctx: Context, settings: Settings, emit: Emit) {
    this.model = model;
    this.ctx = ctx;
    this.settings = settings;
    this.#emit = emit;
    // Per-slot KV streams (not unified) hold CTX_SIZE cells each: only slots are scarce, not cells.
    const kvCells = settings.kvUnified ? settings.kvCells : Number.POSITIVE_INFINITY;
    this.table = new SequenceTable({ slots: ctx.nSeqMax, kvCells, maxEntries: 4096, logEvictions: settings.logEvictions });
    this.scheduler = new Scheduler(this.table, settings.parallel, settings.batchSize);
    this.runner = new Runner(ctx, settings.batchSize, this.table.kvOps);
  }

  get busy(): boolean {
    return !this.scheduler.idle;
  }

  /** Validates every item first (all or nothing), then queues them. */
  submit(ticket: number, items: PromptSpec[], onlyNewTokens: boolean, config: GenerationConfig): void {
    try {
      const waiting = this.scheduler.queue.length + this.scheduler.running.length;
      if (waiting + items.length > this.settings.maxQueue + this.settings.parallel) {
        throw new RequestError({ status: 503, code: "queue_full", message: `the request queue is full (${this.settings.maxQueue} waiting); retry later` });
      }
      const seqs = resolveSequences(this.model, this.table, this.settings, items, config);
      const prefixes: string[] = [];
      const jobs = seqs.map((seq, i) => {
        if (this.table.get(seq.requestId) === seq) this.table.transition(seq, SeqState.Queued);
        else this.table.add(seq);
        if (!onlyNewTokens) prefixes.push(this.#renderSoFar(seq));
        return makeJob(ticket, i, seq, config, this.settings, this.model.info.eogTokens);
      });
      this.#jobs.set(ticket, jobs);
      for (const job of jobs) this.scheduler.enqueue(job);
      this.#emit({ type: "accepted", ticket, prefixes });
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      this.#emit({ type: "error", ticket, error: err.info });
    }
  }

  /** Stops a ticket's jobs; their tokens so far stay cached. */
  abort(ticket: number): void {
    for (const job of this.#jobs.get(ticket) ?? []) if (!job.finish) this.#finish(job, "aborted");
  }

  drop(requestId: string): boolean {
    return this.table.drop(requestId);
  }

  describe(requestId: string): CachedSequenceInfo | null {
    const seq = this.table.get(requestId);
    if (!seq) return null;
    return { request_id: requestId, state: seq.state, prompt_tokens: seq.promptLen, generated_tokens: seq.generated, kv_cells: seq.seqId >= 0 ? seq.nPast : 0 };
  }

  stats(): EngineStats {
    const c = this.table.counts();
    return {
      running: c.running, queued: c.queued, cachedSequences: c.entries - c.running - c.queued,
      kvCellsUsed: this.table.cellsUsed(), kvCells: this.settings.kvCells, evictions: this.table.evictions,
      steps: this.steps, tokensGenerated: this.tokensGenerated, stepUs: Math.round(this.stepUs), postUs: Math.round(this.postUs),
      decodeUs: Math.round(this.runner.decodeUs), sequenceSteps: this.sequenceSteps,
    };
  }

  /** Adds one step's timing: its whole wall time and the part spent handing its messages on. */
  recordStep(stepUs: number, postUs = 0): void {
    this.stepUs += stepUs;
    this.postUs += postUs;
  }

  /** One decode step. Returns false when there was nothing to do. */
  step(): boolean {
    const plan = this.scheduler.schedule();
    if (plan.entries.length === 0) {
      this.runner.applyKvOps();
      return false;
    }
    let status = this.runner.run(plan);
    if (status === DecodeStatus.noKvSlot && this.table.evictAllIdle() > 0) status = this.runner.run(plan);
    this.steps++;
    this.sequenceSteps += plan.entries.length;
    if (status !== 0) this.#failStep(plan, status);
    else this.#postprocess(plan);
    return true;
  }

  #postprocess(plan: Plan): void {
    let beamJobs: BeamJob[] | null = null; // only beam steps allocate
    for (const e of plan.entries) {
      const { job } = e;
      if (e.beam < 0) job.seq.nPast += e.count;
      if (!e.logits || job.finish) continue;
      if (job.kind === "sample") this.#sampleNext(job, e.row);
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
    const { sampler } = job;
    const token = sampler.plainGreedy ? this.ctx.argmaxRow(row) : sampler.sample(this.ctx.logitsRow(row), seq.tokens);
    seq.tokens.push(token);
    this.tokensGenerated++;
    if (this.model.isEog(token)) return this.#finish(job, "eos");
    this.#emitText(job, job.decoder.decode(this.model.tokenPiece(token), STREAM));
    if (job.produced >= job.maxNew) this.#finish(job, "length");
    else if (seq.length >= this.settings.ctxSize) this.#finish(job, "context");
  }

  /** After a beam step: stream newly settled tokens; finish when the search is done. */
  #beamDone(job: BeamJob, done: boolean): void {
    this.tokensGenerated += job.beams.length;
    const settled = job.search.settledTokens();
    if (settled.length > job.emitted) {
      this.#emitTokens(job, settled.slice(job.emitted));
      job.emitted = settled.length;
    }
    if (done) this.#finish(job, job.search.finalize().finishedByEos ? "eos" : "length");
  }

  #emitTokens(job: Job, tokens: readonly number[]): void {
    let text = "";
    for (const t of tokens) if (!this.model.isEog(t)) text += job.decoder.decode(this.model.tokenPiece(t), STREAM);
    this.#emitText(job, text);
  }

  #emitText(job: Job, text: string): void {
    if (text) this.#emit({ type: "text", ticket: job.ticket, index: job.index, text });
  }

  #failStep(plan: Plan, status: number): void {
    const message = status === DecodeStatus.noKvSlot
      ? "the KV cache is full: no room for this batch (increase KV_CELLS or lower PARALLEL)"
      : `llama_decode failed with status ${status}`;
    this.#fail(plan.entries.map((e) => e.job), 503, "decode_failed", message);
  }

  /** Last line of defence (an exception inside a step): fail what was running, keep serving. */
  failRunning(err: Error): void {
    this.#fail([...this.scheduler.running], 500, "engine_error", `internal engine error: ${err.message}`);
  }

  #fail(jobs: Job[], status: number, code: string, message: string): void {
    console.error(`[engine] ${message}`);
    for (const job of new Set(jobs)) {
      const seq = job.seq;
      if (job.finish) continue;
      if (seq.seqId >= 0 && !(job.kind === "beam" && job.beams.length > 0)) {
        seq.nPast = Math.min(seq.length, this.ctx.seqPosMax(seq.seqId) + 1); // what the cache really holds now
      }
      this.#emit({ type: "error", ticket: job.ticket, error: { status, code, message } });
      this.#finish(job, "aborted", false);
    }
  }

  #finish(job: Job, reason: FinishReason, notify = true): void {
    job.finish = reason;
    const seq = job.seq;
    if (job.kind === "beam" && seq.state === SeqState.Running) {
      const { tokens } = concludeBeams(job, this.table, this.model.info.eos);
      if (notify) this.#emitTokens(job, tokens.slice(job.emitted));
    }
    const where = this.scheduler.remove(job);
    if (where === "running") this.table.transition(seq, SeqState.Idle);
    else if (where === "queued") this.table.transition(seq, seq.seqId >= 0 ? SeqState.Idle : SeqState.Evicted);
    if (notify) {
      this.#emitText(job, job.decoder.decode()); // bytes held back for an incomplete character
      this.#emit({ type: "done", ticket: job.ticket, index: job.index, reason, generated: job.produced });
    }
    const jobs = this.#jobs.get(job.ticket);
    if (jobs && jobs.every((j) => j.finish)) this.#jobs.delete(job.ticket);
  }

  /** The full text so far: the prompt as the model saw it (special tokens rendered) + all generated. */
  #renderSoFar(seq: Sequence): string {
    const ids = seq.tokens.view();
    return this.model.detokenize(ids.subarray(0, seq.promptLen), true) + this.model.piecesText(ids.subarray(seq.promptLen));
  }
}
