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

  schedule(): Plan {
    this.#admit();
    const entries: PlanEntry[] = [];
    let budget = this.#batchSize;
    for (const job of this.running) {
      if (job.kind === "beam" && job.beams.length > 0) {
        const pos = job.basePos + job.search.stepCount - 1;
        job.beams.forEach((b, i) => entries.push({ job, seqId: b.seqId, pos, count: 1, beam: i, token: b.token, logits: true, row: -1 }));
        budget -= job.beams.length;
      } else if (job.seq.pending === 1) {
        entries.push(this.#own(job, 1));
        budget--;
      }
    }
    for (const job of this.running) {
      const pending = job.seq.pending;
      if (pending <= 1 || budget === 0 || (job.kind === "beam" && job.beams.length > 0)) continue;
      const count = Math.min(pending, budget);
      entries.push(this.#own(job, count));
      budget -= count;
    }
    return { entries };
  }

  /** The next `count` of the sequence's own tokens; logits when they complete it. */
  #own(job: Job, count: number): PlanEntry {
    const seq = job.seq;
    const start = seq.nPast;
    return { job, seqId: seq.seqId, pos: start, count, beam: -1, token: -1, logits: start + count === seq.length, row: -1 };
  }

  #admit(): void {
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
    }
  }
}
