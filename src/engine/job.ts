// A job is one running request item: a sequence plus how to generate for it and where output goes.
import type { TokenSampler } from "../sampling/sampler.ts";
import type { FinishReason } from "./messages.ts";
import type { Sequence } from "./sequence.ts";

export class Job {
  readonly ticket: number;
  readonly index: number;
  readonly seq: Sequence;
  readonly maxNew: number;
  readonly sampler: TokenSampler;
  /** sequence length when the job started; generated = seq.length - startLen */
  readonly startLen: number;
  /** UTF-8 decoder in stream mode: holds back incomplete characters between tokens */
  readonly decoder = new TextDecoder("utf-8");
  finish: FinishReason | null = null;

  constructor(ticket: number, index: number, seq: Sequence, maxNew: number, sampler: TokenSampler) {
    this.ticket = ticket;
    this.index = index;
    this.seq = seq;
    this.maxNew = maxNew;
    this.sampler = sampler;
    this.startLen = seq.length;
  }

  get produced(): number {
    return this.seq.length - this.startLen;
  }
}
