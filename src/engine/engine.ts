// The engine: owns the table, scheduler and runner; one step = schedule, run, postprocess.
import type { Settings } from "../config.ts";
import type { Context, Model } from "../native/index.ts";
import { TokenSampler } from "../sampling/sampler.ts";
import { Job } from "./job.ts";
import type { CachedSequenceInfo, EngineStats, ErrorInfo, FinishReason, FromEngine, GenerationConfig, PromptSpec } from "./messages.ts";
import { Runner } from "./runner.ts";
import { Scheduler, type Plan } from "./scheduler.ts";
import { SequenceTable } from "./seq-table.ts";
import { SeqState, Sequence } from "./sequence.ts";

export type Emit = (msg: FromEngine) => void;

export class RequestError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

export class Engine {
  readonly model: Model;
  readonly ctx: Context;
  readonly settings: Settings;
  readonly table: SequenceTable;
  readonly scheduler: Scheduler;
  readonly runner: Runner;
  readonly #emit: Emit;
  readonly #eog: Uint8Array;
  readonly #jobs = new Map<number, Job[]>();
  steps = 0;
  tokensGenerated = 0;
  stepUs = 0;
  sequenceSteps = 0;

  constructor(model: Model, ctx: Context, settings: Settings, emit: Emit) {
    this.model = model;
    this.ctx = ctx;
    this.settings = settings;
    this.#emit = emit;
    this.table = new SequenceTable({ slots: ctx.nSeqMax, kvCells: settings.kvCells, maxEntries: 4096 });
    this.scheduler = new Scheduler(this.table, settings.parallel, settings.batchSize);
    this.runner = new Runner(ctx, settings.batchSize);
    this.#eog = new Uint8Array(model.info.nVocab);
    for (const t of model.info.eogTokens) this.#eog[t] = 1;
  }

  get busy(): boolean {
    return !this.scheduler.idle;
  }

  /** Validates every item first (all or nothing), then queues them. */
  submit(ticket: number, items: PromptSpec[], onlyNewTokens: boolean, config: GenerationConfig): void {
    try {
      if (config.num_beams > 1) {
        throw new RequestError({ status: 422, code: "unsupported", field: "generation_config.num_beams", message: "num_beams > 1 (beam search) is not supported yet; use num_beams: 1" });
      }
      const waiting = this.scheduler.queue.length + this.scheduler.running.length;
      if (waiting + items.length > this.settings.maxQueue + this.settings.parallel) {
        throw new RequestError({ status: 503, code: "queue_full", message: `the request queue is full (${this.settings.maxQueue} waiting); retry later` });
      }
      const seqs = items.map((item, i) => this.#prepare(item, i, items.length, config));
      const maxNew = (seq: Sequence) => (config.fitMaxNewTokens ? Math.min(config.max_new_tokens, this.settings.ctxSize - seq.length) : config.max_new_tokens);
      const prefixes: string[] = [];
      const jobs = seqs.map((seq, i) => {
        const existing = this.table.get(seq.requestId) === seq;
        if (!existing) this.table.add(seq);
        else this.table.transition(seq, SeqState.Queued);
        if (!onlyNewTokens) prefixes.push(this.#renderSoFar(seq));
        const seed = config.seed === undefined ? undefined : config.seed + i;
        const sampler = new TokenSampler({
          doSample: config.do_sample, temperature: config.temperature, topK: config.top_k,
          topP: config.top_p, repetitionPenalty: config.repetition_penalty, seed,
        });
        return new Job(ticket, i, seq, maxNew(seq), sampler);
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
      steps: this.steps, tokensGenerated: this.tokensGenerated, stepUs: Math.round(this.stepUs),
      decodeUs: Math.round(this.runner.decodeUs), sequenceSteps: this.sequenceSteps,
    };
  }

  /** One decode step. Returns false when there was nothing to do. */
  step(): boolean {
    const plan = this.scheduler.schedule();
    if (plan.entries.length === 0) {
      for (const id of plan.releases) this.ctx.seqRm(id);
      return false;
    }
    let status = this.runner.run(plan);
    if (status === 1 && this.table.evictAllIdle() > 0) {
      plan.releases = this.table.kvReleases.splice(0);
      status = this.runner.run(plan);
    }
    this.steps++;
    this.sequenceSteps += plan.entries.length;
    if (status !== 0) this.#failStep(plan, status);
    else this.#postprocess(plan);
    return true;
  }

  #postprocess(plan: Plan): void {
    for (const e of plan.entries) {
      const { job } = e;
      const seq = job.seq;
      seq.nPast += e.count;
      if (!e.logits || job.finish) continue;
      const token = job.sampler.sample(this.ctx.logitsRow(e.row), seq.tokens);
      seq.tokens.push(token);
      this.tokensGenerated++;
      if (this.#eog[token]) {
        this.#finish(job, "eos");
        continue;
      }
      const text = job.decoder.decode(this.model.tokenPiece(token), { stream: true });
      if (text) this.#emit({ type: "text", ticket: job.ticket, index: job.index, text });
      if (job.produced >= job.maxNew) this.#finish(job, "length");
      else if (seq.length >= this.settings.ctxSize) this.#finish(job, "context");
    }
  }

  #failStep(plan: Plan, status: number): void {
    const message = status === 1
      ? "the KV cache is full: no room for this batch (increase KV_CELLS or lower PARALLEL)"
      : `llama_decode failed with status ${status}`;
    console.error(`[engine] ${message}`);
    for (const e of plan.entries) {
      const seq = e.job.seq;
      seq.nPast = this.ctx.seqPosMax(seq.seqId) + 1; // what the cache really holds now
      if (e.job.finish) continue;
      this.#emit({ type: "error", ticket: e.job.ticket, error: { status: 503, code: "decode_failed", message } });
      this.#finish(e.job, "aborted", false);
    }
  }

  #finish(job: Job, reason: FinishReason, notify = true): void {
    job.finish = reason;
    const where = this.scheduler.remove(job);
    const seq = job.seq;
    if (where === "running") this.table.transition(seq, SeqState.Idle);
    else if (where === "queued") this.table.transition(seq, seq.seqId >= 0 ? SeqState.Idle : SeqState.Evicted);
    if (notify) {
      const rest = job.decoder.decode(); // bytes held back for an incomplete character
      if (rest) this.#emit({ type: "text", ticket: job.ticket, index: job.index, text: rest });
      this.#emit({ type: "done", ticket: job.ticket, index: job.index, reason, generated: job.produced });
    }
    const jobs = this.#jobs.get(job.ticket);
    if (jobs && jobs.every((j) => j.finish)) this.#jobs.delete(job.ticket);
  }

  /** Finds or creates the sequence of an item and checks it can run; throws RequestError. */
  #prepare(item: PromptSpec, i: number, n: number, config: GenerationConfig): Sequence {
    const field = (name: string) => (n > 1 || i > 0 ? `prompts[${i}].${name}` : name);
    const maxNew = config.fitMaxNewTokens ? 1 : config.max_new_tokens; // defaults only need room for one token
    const ctxSize = this.settings.ctxSize;
    const existing = this.table.get(item.requestId);
    if (existing) {
      if (existing.busy) {
        throw new RequestError({ status: 409, code: "busy", field: field("request_id"), message: `request_id "${item.requestId}" is already generating; wait for it to finish or abort it` });
      }
      if (existing.length + maxNew > ctxSize) {
        throw new RequestError({ status: 422, code: "context_exceeded", field: "generation_config.max_new_tokens", message: `cached sequence "${item.requestId}" has ${existing.length} tokens; with max_new_tokens ${maxNew} that is ${existing.length + maxNew} > CTX_SIZE ${ctxSize}` });
      }
      return existing;
    }
    const tokens = this.model.tokenize(item.prompt, true, true);
    if (tokens.length === 0) {
      throw new RequestError({ status: 422, code: "empty_prompt", field: field("prompt"), message: "the prompt has no tokens" });
    }
    if (tokens.length + maxNew > ctxSize) {
      throw new RequestError({ status: 422, code: "context_exceeded", field: field("prompt"), message: `prompt has ${tokens.length} tokens; with max_new_tokens ${maxNew} that is ${tokens.length + maxNew} > CTX_SIZE ${ctxSize}` });
    }
    return new Sequence(item.requestId, tokens, this.model.info.nVocab);
  }

  /** The full text so far: the prompt as the model saw it (special tokens rendered) + all generated. */
  #renderSoFar(seq: Sequence): string {
    const ids = seq.tokens.view();
    return this.model.detokenize(ids.subarray(0, seq.promptLen), true) + this.model.piecesText(ids.subarray(seq.promptLen));
  }
}
