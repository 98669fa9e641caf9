// The engine: owns the table, scheduler and runner; one step = schedule, run, postprocess
// (postprocess.ts reads the rows; the engine admits, finishes and fails jobs).
import { leasesEnabled, type Settings } from "../config.ts";
import { DecodeStatus, type Context, type Model } from "../native/index.ts";
import { concludeBeams } from "./beam-slots.ts";
import { errorFields, logEvent } from "../log.ts";
import { SessionManager } from "../sessions/manager.ts";
import { EngineSessions } from "./engine-sessions.ts";
import type { Job } from "./job.ts";
import type { EngineStats, FinishReason, FromEngine, GenerationConfig, PromptSpec } from "./messages.ts";
import { applySync, makeJob, RequestError, resolveSequences, type SyncEdit } from "./requests.ts";
import type { Constraint, GrammarPool } from "../constraints/pool.ts";
import { EngineConstraints } from "./engine-constraints.ts";
import { Postprocess } from "./postprocess.ts";
import { Runner } from "./runner.ts";
import { Scheduler, type Plan } from "./scheduler.ts";
import { SequenceTable } from "./seq-table.ts";
import { SeqState } from "./sequence.ts";
import { renderSoFar, TextOut } from "./text-out.ts";
import { settleJob, withdrawJob } from "./job-end.ts";
import { engineStats } from "./engine-stats.ts";

export type Emit = (msg: FromEngine) => void;

/** f(v) now for a plain value, or once a promise resolves (keeps the no-I/O path synchronous). */
function then<T, R>(v: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

export interface EngineOptions {
  /** the session tiers below the KV cache (default: host RAM only, nothing persisted) */
  sessions?: SessionManager;
  /** sends what was emitted now (messages emitted outside a step, e.g. after a store write) */
  flush?: () => void;
  /** the grammar workers for constrained output, made on first use (default: constraints refused) */
  grammars?: () => GrammarPool;
}

export class Engine {
  readonly model: Model;
  readonly ctx: Context;
  readonly settings: Settings;
  readonly table: SequenceTable;
  readonly scheduler: Scheduler;
  readonly runner: Runner;
  readonly sessions: EngineSessions;
  readonly #emit: Emit;
  readonly #out: TextOut;
  readonly #flush: () => void;
  readonly #constraints: EngineConstraints;
  readonly #post: Postprocess;
  readonly #jobs = new Map<number, Job[]>();
  /** requests hold Redis leases on their ids: the HTTP thread waits for "settled" to release them */
  readonly #leases: boolean;
  /** tickets between submit and accepted (waiting on the store); value: an abort that came meanwhile */
  readonly #preparing = new Map<number, { delivered?: number[] } | null>();
  steps = 0;
  /** set once the model produced non-finite logits: nothing more is generated */
  brokenReason: string | null = null;
  /** wall time of steps and of posting their messages, microseconds (timed by whoever runs the loop) */
  stepUs = 0;
  postUs = 0;
  sequenceSteps = 0;

  constructor(model: Model, ctx: Context, settings: Settings, emit: Emit, opts: EngineOptions = {}) {
    this.model = model;
    this.ctx = ctx;
    this.settings = settings;
    this.#emit = emit;
    this.#out = new TextOut(model, emit);
    this.#flush = opts.flush ?? (() => {});
    this.#constraints = new EngineConstraints(opts.grammars ?? null);
    // Per-slot KV streams (not unified) hold CTX_SIZE cells each: only slots are scarce, not cells.
    const kvCells = settings.kvUnified ? settings.kvCells : Number.POSITIVE_INFINITY;
    this.table = new SequenceTable({ slots: ctx.nSeqMax, kvCells, maxEntries: 4096, logEvictions: settings.logEvictions, minPrefixTokens: settings.prefixReuseMinTokens, compactMaxCells: settings.slotCompactMaxTokens });
    this.scheduler = new Scheduler(this.table, settings.parallel, settings.batchSize);
    const manager = opts.sessions ?? new SessionManager(null, { model: "", llama: "", shape: "" }, { ramBytes: settings.sessions.ramBytes, storeBytes: 0, ttlS: 0 });
    this.sessions = new EngineSessions(manager, this.table, model.info.nVocab);
    this.runner = new Runner(ctx, settings.batchSize, this.table.kvOps, this.sessions);
    this.sessions.kvOnFinish = settings.sessions.kvWrites === "finish" && manager.persistent;
    this.#leases = leasesEnabled(settings);
    this.#post = new Postprocess(model, ctx, this.table, this.#out, settings, { finish: (job, reason) => this.#finish(job, reason), broken: (job) => this.#broken(job) });
  }

  get busy(): boolean {
    return !this.scheduler.idle;
  }

  /**
   * Validates every item first (all or nothing), then queues them. Sessions known only to the
   * store, and KV states waiting there, are fetched first (the only asynchronous part: without
   * them a submit is handled at once, within its message).
   */
  submit(ticket: number, items: PromptSpec[], onlyNewTokens: boolean, config: GenerationConfig): void {
    this.#preparing.set(ticket, null);
    const refused = (err: unknown) => {
      if (!(err instanceof RequestError)) {
        // a bug, not the client's fault: this request fails with a 500 and the table is put back
        // as it was; the engine goes on serving (an exception here used to close the worker)
        logEvent("error", "submit_failed", errorFields(err), "engine");
        for (const job of this.#jobs.get(ticket) ?? []) if (!job.finish) this.#finish(job, "aborted", false);
        this.#jobs.delete(ticket);
        err = new RequestError({ status: 500, code: "engine_error", message: `internal engine error: ${err instanceof Error ? err.message : String(err)}` });
      }
      this.#emit({ type: "error", ticket, error: (err as RequestError).info });
      if (!this.#jobs.has(ticket)) this.#settled(ticket, "request"); // nothing was queued
    };
    const end = () => {
      const abort = this.#preparing.get(ticket);
      this.#preparing.delete(ticket);
      if (abort) this.abort(ticket, abort.delivered);
    };
    try {
      const queued = this.#accept(ticket, items, onlyNewTokens, config);
      if (queued instanceof Promise) void queued.catch(refused).finally(() => (end(), this.#flush()));
      else end();
    } catch (err) {
      end();
      refused(err);
    }
  }

  #accept(ticket: number, items: PromptSpec[], onlyNewTokens: boolean, config: GenerationConfig): void | Promise<void> {
    if (this.brokenReason) throw new RequestError({ status: 503, code: "model_broken", message: this.brokenReason });
    const waiting = this.scheduler.queue.length + this.scheduler.running.length;
    if (waiting + items.length > this.settings.maxQueue + this.settings.parallel) {
      throw new RequestError({ status: 503, code: "queue_full", message: `the request queue is full (${this.settings.maxQueue} waiting); retry later` });
    }
    this.sessions.forgetLocal(items.filter((i) => i.stale).map((i) => i.requestId));
    // constraints compile in their own workers meanwhile (a cached one opens at once)
    const constraints = config.constraint ? this.#constraints.open(config, items.length) : null;
    return then(then(this.sessions.loadStored(items.filter((i) => !i.ephemeral).map((i) => i.requestId)), () => constraints), (opened) => {
      try {
        return this.#queue(ticket, items, onlyNewTokens, config, opened ?? null);
      } catch (err) {
        for (const c of opened ?? []) c.close();
        throw err;
      }
    });
  }

  /** Resolves the items' sequences, makes their jobs and queues them once their sessions are ready. */
  #queue(ticket: number, items: PromptSpec[], onlyNewTokens: boolean, config: GenerationConfig, constraints: Constraint[] | null): void | Promise<void> {
    const syncs: SyncEdit[] = [];
    const seqs = resolveSequences(this.model, this.table, this.settings, items, config, syncs);
    for (const edit of syncs) applySync(this.table, edit); // only once every item is known to fit
    const fresh = seqs.map((seq) => this.table.get(seq.requestId) !== seq);
    const jobs: Job[] = [];
    this.#jobs.set(ticket, jobs); // registered first: a failure part-way can undo what was queued
    seqs.forEach((seq, i) => {
      const job = makeJob(ticket, i, seq, config, this.settings, this.model.info.eogTokens, items[i]!.seedOffset ?? 0);
      job.constraint = constraints?.[i] ?? null;
      job.shownTokens = config.special_text ? this.#out.shown(config.special_text) : null;
      job.fresh = fresh[i]!;
      if (fresh[i] && items[i]!.ephemeral) seq.ephemeral = true; // an existing session stays one
      if (fresh[i]) this.table.add(seq);
      else this.table.transition(seq, SeqState.Queued);
      jobs.push(job);
    });
    return then(this.sessions.prepare(seqs, fresh), (sessions) => {
      const prefixes = onlyNewTokens ? [] : seqs.map((seq) => renderSoFar(this.model, seq));
      for (const job of jobs) this.scheduler.enqueue(job);
      this.#emit({ type: "accepted", ticket, prefixes, sessions });
    });
  }

  /**
   * Stops a ticket's jobs. `delivered[index]`: tokens that item's client received; the session
   * ends there (later tokens leave it). Without it, everything generated stays cached.
   */
  abort(ticket: number, delivered?: number[]): void {
    if (this.#preparing.has(ticket)) return void this.#preparing.set(ticket, { delivered });
    for (const job of this.#jobs.get(ticket) ?? []) {
      if (job.finish) continue;
      if (delivered) job.delivered = delivered[job.index] ?? 0;
      this.#finish(job, "aborted");
    }
  }

  /**
   * A stream ended, but its client left before all of its text was sent: the session keeps what
   * was. Only if nothing happened to it since (`expect` tokens, idle): a newer request wins.
   */
  cut(requestId: string, length: number, expect: number, ticket?: number): void {
    const settled = () => ticket !== undefined && this.#settled(ticket, "stream");
    const seq = this.table.get(requestId);
    if (!seq || seq.busy || seq.length !== expect || length >= expect) return void settled();
    this.table.truncate(seq, length);
    void this.sessions.persist(seq, this.runner).then(settled);
  }

  /** Stops what still runs, then writes every session's KV state to the store. */
  async shutdown(): Promise<{ written: number; failed: number }> {
    for (const jobs of [...this.#jobs.values()]) for (const job of jobs) if (!job.finish) this.#finish(job, "aborted");
    this.runner.applyKvOps();
    this.#constraints.close();
    return this.sessions.shutdown(this.runner);
  }

  stats(): EngineStats {
    return engineStats(this.table, this.runner, this.sessions.manager, this.settings, {
      steps: this.steps, stepUs: this.stepUs, postUs: this.postUs, sequenceSteps: this.sequenceSteps, tokensGenerated: this.#post.tokensGenerated,
    });
  }

  /** Adds one step's timing: its whole wall time and the part spent handing its messages on. */
  recordStep(stepUs: number, postUs = 0): void {
    this.stepUs += stepUs;
    this.postUs += postUs;
  }

  /** One decode step. Returns false when there was nothing to do. */
  step(): boolean {
    this.#expireQueued();
    const admitted = this.scheduler.admit();
    this.runner.applyKvOps(); // evicted sequences saved, admitted ones restored: the plan sees their real nPast
    for (let i = this.scheduler.running.length - admitted; i < this.scheduler.running.length; i++) {
      const job = this.scheduler.running[i]!;
      // a state llama.cpp refused after all: the x-session the client sees says so
      const session = job.seq.restoreFailed ? "recomputed" : undefined;
      job.seq.restoreFailed = false;
      job.cached = job.seq.nPast; // its first feed starts after the cells that already hold its tokens
      this.#emit({ type: "started", ticket: job.ticket, index: job.index, session, at: performance.timeOrigin + performance.now(), promptTokens: job.startLen, cached: job.cached });
    }
    // per-sequence KV streams: one run of consecutive slots for the running sequences; the runner
    // makes the moves before it decodes
    if (!this.settings.kvUnified && this.settings.slotCompactMaxTokens > 0 && this.scheduler.scattered()) this.table.compact();
    const plan = this.scheduler.plan();
    if (plan.entries.length === 0) return false;
    let status = this.runner.run(plan);
    if (status === DecodeStatus.noKvSlot && this.table.evictAllIdle() > 0) status = this.runner.run(plan);
    this.steps++;
    this.sequenceSteps += plan.entries.length;
    if (status !== 0) this.#failStep(plan, status);
    else this.#post.run(plan);
    return true;
  }

  #failStep(plan: Plan, status: number): void {
    const message = status === DecodeStatus.noKvSlot
      ? "the KV cache is full: no room for this batch (increase KV_CELLS or lower PARALLEL)"
      : `llama_decode failed with status ${status}`;
    this.#fail(plan.entries.map((e) => e.job), 503, "decode_failed", message);
  }

  /** QUEUE_TIMEOUT_S: a request that waited too long for a slot gets 503 + Retry-After (all its items). */
  #expireQueued(): void {
    for (const ticket of this.scheduler.lateTickets(this.settings.queueTimeoutS * 1000)) {
      const message = `waited more than QUEUE_TIMEOUT_S (${this.settings.queueTimeoutS} s) for a free slot; retry later`;
      this.#emit({ type: "error", ticket, error: { status: 503, code: "queue_timeout", message } });
      for (const job of this.#jobs.get(ticket) ?? []) if (!job.finish) this.#finish(job, "aborted", false);
    }
  }

  /**
   * The model produced NaN or infinite logits: its weights (or the backend) are broken, and every
   * further token would be garbage. The request fails with a 500 naming the cause, every later
   * one gets 503, and /health reports the model as broken.
   */
  #broken(job: Job): void {
    const message = "the model produced non-finite logits (NaN or infinity): its weights or the backend are broken";
    if (!this.brokenReason) {
      this.brokenReason = message;
      this.#emit({ type: "broken", message });
    }
    this.#fail([job], 500, "non_finite_logits", message);
  }

  /** Last line of defence (an exception inside a step): fail what was running, keep serving. */
  failRunning(err: Error): void {
    this.#fail([...this.scheduler.running], 500, "engine_error", `internal engine error: ${err.message}`);
  }

  /** Fails these jobs' requests, each as a whole: an item's error ends its request, so its other items stop too. */
  #fail(jobs: Job[], status: number, code: string, message: string): void {
    logEvent("error", "generation_failed", { code, message, requests: jobs.length }, "engine");
    for (const job of new Set(jobs)) {
      const seq = job.seq;
      if (job.finish) continue;
      if (seq.seqId >= 0 && !(job.kind === "beam" && job.beams.length > 0)) {
        seq.nPast = Math.min(seq.length, this.ctx.seqPosMax(seq.seqId) + 1); // what the cache really holds now
      }
      this.#emit({ type: "error", ticket: job.ticket, error: { status, code, message } });
      this.#finish(job, "aborted", false);
      for (const other of this.#jobs.get(job.ticket) ?? []) if (!other.finish) this.#finish(other, "aborted", false);
    }
  }

  #finish(job: Job, reason: FinishReason, notify = true): void {
    job.finish = reason;
    job.constraint?.close();
    const seq = job.seq;
    if (job.kind === "beam" && seq.state === SeqState.Running) {
      const { tokens } = concludeBeams(job, this.table, this.model.info.eos);
      if (notify) this.#out.tokens(job, tokens.slice(job.emitted));
    }
    if (job.kind === "beam") for (const c of job.constraints.splice(0)) c?.close();
    const kept = this.scheduler.remove(job) === "running" ? settleJob(job, this.table) : withdrawJob(job, this.table, this.sessions);
    const done: FromEngine = { type: "done", ticket: job.ticket, index: job.index, reason, generated: job.produced, length: seq.length, promptTokens: job.startLen, cached: job.cached ?? 0 };
    if (notify) this.#out.text(job, job.decoder.decode()); // bytes held back for an incomplete character
    // the response ends only once the session's tokens are durable
    if (kept) job.persisted = this.sessions.persist(seq, this.runner).then(() => void (notify && (this.#emit(done), this.#flush())));
    else if (notify) this.#emit(done);
    const jobs = this.#jobs.get(job.ticket);
    if (jobs && jobs.every((j) => j.finish)) {
      this.#jobs.delete(job.ticket);
      if (this.#leases) void Promise.all(jobs.map((j) => j.persisted)).then(() => this.#settled(job.ticket, "request"));
    }
  }

  /** With session leases: tells the HTTP thread a ticket's writes landed, so its leases may go (src/cluster/leases.ts). */
  #settled(ticket: number, of: "request" | "stream"): void {
    if (!this.#leases) return;
    this.#emit({ type: "settled", ticket, of });
    this.#flush();
  }
}
