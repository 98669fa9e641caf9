// Scheduling policy: FIFO admission under the slot and KV budgets, then one step's plan —
// every decoding sequence's next token first (each live beam counts as one), prompt chunks of
// newer requests with what is left. Never touches the model.
import type { Job } from "./job.ts";
import { SeqState } from "./sequence.ts";
import type { SequenceTable } from "./seq-table.ts";

export interface PlanEntry {
  job: Job;
  seqId: number;
  /** first position fed this step */
  pos: number;
  /** tokens fed: the sequence's own [pos, pos + count), or one beam token */
  count: number;
  /** live beam index, or -1 when the tokens are the sequence's own (prompt or sampled) */
  beam: number;
  /** the token fed for a beam (beam >= 0) */
  token: number;
  /** logits wanted for the last token fed */
  logits: boolean;
  /** output row of the logits in the decoded batch, set by the runner */
  row: number;
}

const NONE: ReadonlySet<number> = new Set();

export interface Plan {
  entries: PlanEntry[];
}

export class Scheduler {
  readonly queue: Job[] = [];
  readonly running: Job[] = [];
  readonly #table: SequenceTable;
  readonly #parallel: number;
  readonly #batchSize: number;
  #width = 0;
  readonly #plan: Plan = { entries: [] };
  /** PlanEntry objects reused by every step's plan */
  readonly #pool: PlanEntry[] = [];

  constructor(table: SequenceTable, parallel: number, batchSize: number) {
    if (batchSize < parallel) throw new Error(`batch size ${batchSize} must be >= parallel ${parallel}`);
    this.#table = table;
    this.#parallel = parallel;
    this.#batchSize = batchSize;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.running.length === 0;
  }

  enqueue(job: Job): void {
    this.queue.push(job);
  }

  /** Removes a job wherever it is; returns where it was. */
  remove(job: Job): "queued" | "running" | null {
    let i = this.running.indexOf(job);
    if (i >= 0) {
      this.running.splice(i, 1);
      this.#width -= job.width;
      return "running";
    }
    i = this.queue.indexOf(job);
    if (i >= 0) return this.queue.splice(i, 1), "queued";
    return null;
  }

  /** Admission, then the plan (the engine runs the admitted sequences' KV edits in between). */
  schedule(): Plan {
    this.admit();
    return this.plan();
  }

  /**
   * The next step's plan over the running jobs. The plan and its entries are reused from step to
   * step (the decode loop allocates nothing here): it is valid until the next call.
   */
  plan(): Plan {
    this.#plan.entries.length = 0;
    let budget = this.#batchSize;
    for (const job of this.running) {
      if (beamsDecoding(job)) {
        const pos = job.basePos + job.search.stepCount - 1;
        for (let i = 0; i < job.beams.length; i++) this.#add(job, job.beams[i]!.seqId, pos, 1, i, job.beams[i]!.token, true);
        budget -= job.beams.length;
      } else if (job.seq.pending === 1) {
        this.#own(job, 1);
        budget--;
      }
    }
    for (const job of this.running) {
      const pending = job.seq.pending;
      if (pending <= 1 || budget === 0 || beamsDecoding(job)) continue;
      const count = Math.min(pending, budget);
      this.#own(job, count);
      budget -= count;
    }
    return this.#plan;
  }

  /** The next `count` of the sequence's own tokens; logits when they complete it. */
  #own(job: Job, count: number): void {
    const seq = job.seq;
    this.#add(job, seq.seqId, seq.nPast, count, -1, -1, seq.nPast + count === seq.length);
  }

  #add(job: Job, seqId: number, pos: number, count: number, beam: number, token: number, logits: boolean): void {
    const entries = this.#plan.entries;
    const e = (this.#pool[entries.length] ??= { job, seqId, pos, count, beam, token, logits, row: -1 });
    e.job = job;
    e.seqId = seqId;
    e.pos = pos;
    e.count = count;
    e.beam = beam;
    e.token = token;
    e.logits = logits;
    e.row = -1;
    entries.push(e);
  }

  /** Tickets with a job queued for `limitMs` or longer (none when the limit is 0); checked every step, so nothing is allocated while none is late. */
  lateTickets(limitMs: number): ReadonlySet<number> {
    const head = this.queue[0], now = performance.now();
    if (limitMs <= 0 || !head || now - head.queuedAt < limitMs) return NONE; // FIFO: the head waited longest
    return new Set(this.queue.filter((j) => now - j.queuedAt >= limitMs).map((j) => j.ticket));
  }

  /**
   * Whether the running sequences' slots are not one run of consecutive ids (with per-sequence KV
   * streams llama.cpp decodes each run as its own pass: the table should compact). False while a
   * beam job runs: its beams hold slots the table does not see. One pass over the running jobs.
   */
  scattered(): boolean {
    let n = 0, lo = Infinity, hi = -1;
    for (const job of this.running) {
      if (job.kind === "beam") return false;
      const id = job.seq.seqId;
      n++;
      if (id < lo) lo = id;
      if (id > hi) hi = id;
    }
    return hi - lo + 1 > n;
  }

  /** Moves queued jobs to running, FIFO, while slots, width and KV cells allow; returns how many. */
  admit(): number {
    let n = 0;
    while (this.queue.length > 0) {
      const job = this.queue[0]!;
      if (this.#width + job.width > this.#parallel) break;
      const extra = this.#table.admit(job.seq, job.reserve, job.width - 1);
      if (!extra) break; // head of line waits for cells or slots
      if (job.kind === "beam") job.spare = extra;
      this.queue.shift();
      this.#table.transition(job.seq, SeqState.Running);
      this.running.push(job);
      this.#width += job.width;
      n++;
    }
    return n;
  }
}

/** A beam job past its prompt: one entry per live beam each step. */
function beamsDecoding(job: Job): job is Job & { kind: "beam" } {
  return job.kind === "beam" && job.beams.length > 0;
}
