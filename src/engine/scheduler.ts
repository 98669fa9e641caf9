// Scheduling policy: FIFO admission under the slot and KV budgets, then one step's plan —
// every decoding sequence's next token first, prompt chunks of newer ones with what is left.
// Never touches the model.
import type { Job } from "./job.ts";
import { SeqState } from "./sequence.ts";
import type { SequenceTable } from "./seq-table.ts";

export interface PlanEntry {
  job: Job;
  /** first position fed this step (= seq.nPast) */
  start: number;
  count: number;
  /** logits wanted for the last token fed (the prompt is complete after this step) */
  logits: boolean;
  /** output row of the logits in the decoded batch, set by the runner */
  row: number;
}

export interface Plan {
  /** seqIds whose KV cells must be cleared first */
  releases: number[];
  entries: PlanEntry[];
}

export class Scheduler {
  readonly queue: Job[] = [];
  readonly running: Job[] = [];
  readonly #table: SequenceTable;
  readonly #parallel: number;
  readonly #batchSize: number;

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
    if (i >= 0) return this.running.splice(i, 1), "running";
    i = this.queue.indexOf(job);
    if (i >= 0) return this.queue.splice(i, 1), "queued";
    return null;
  }

  schedule(): Plan {
    this.#admit();
    const entries: PlanEntry[] = [];
    let budget = this.#batchSize;
    for (const job of this.running) {
      if (job.seq.pending !== 1) continue;
      entries.push({ job, start: job.seq.nPast, count: 1, logits: true, row: -1 });
      budget--;
    }
    for (const job of this.running) {
      const pending = job.seq.pending;
      if (pending <= 1 || budget === 0) continue;
      const count = Math.min(pending, budget);
      entries.push({ job, start: job.seq.nPast, count, logits: count === pending, row: -1 });
      budget -= count;
    }
    const releases = this.#table.kvReleases.splice(0);
    return { releases, entries };
  }

  #admit(): void {
    while (this.queue.length > 0 && this.running.length < this.#parallel) {
      const job = this.queue[0]!;
      const reserve = job.seq.length + job.maxNew;
      if (!this.#table.admit(job.seq, reserve)) break; // head of line waits for cells
      this.queue.shift();
      this.#table.transition(job.seq, SeqState.Running);
      this.running.push(job);
    }
  }
}
