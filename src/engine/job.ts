// A job is one request item being generated: a sequence plus how to pick its tokens.
// SampleJob: one token per step from TokenSampler. BeamJob: beam search over several KV slots.
import type { Constraint } from "../constraints/pool.ts";
import type { BeamSearch } from "../sampling/beam-search.ts";
import type { TokenSampler } from "../sampling/sampler.ts";
import type { FinishReason, TokenLogprob } from "./messages.ts";
import type { Sequence } from "./sequence.ts";

abstract class JobBase {
  readonly ticket: number;
  readonly index: number;
  readonly seq: Sequence;
  readonly maxNew: number;
  /** sequence length when the job started; generated = seq.length - startLen */
  readonly startLen: number;
  /**
   * of those, the tokens already in the KV cache at the job's first feed (a continued session, a
   * restored state, a reused prefix): not decoded again. Set when it starts (0 in its "done" if it never did).
   */
  cached: number | null = null;
  /** UTF-8 decoder in stream mode: holds back incomplete characters between tokens */
  readonly decoder = new TextDecoder("utf-8");
  finish: FinishReason | null = null;
  /** the sequence was created by this request (nothing of it existed before) */
  fresh = false;
  /** UTF-8 continuation bytes the text sent so far still owes (see utf8.ts) */
  utf8Need = 0;
  /** tokens produced whose pieces went through the decoder */
  decodedTokens = 0;
  /** tokens produced whose text is complete in what was sent */
  complete = 0;
  /** when it was queued (performance.now()), for QUEUE_TIMEOUT_S */
  readonly queuedAt = performance.now();
  /** set by an abort: tokens the client received; later ones are cut from the session */
  delivered: number | null = null;
  /** the session's writes after it ended (resolved when durable, or when there was nothing to write) */
  persisted: Promise<void> | null = null;
  /** what the output must match (a JSON Schema, any JSON, a grammar); null: anything. A beam search's root state. */
  constraint: Constraint | null = null;
  /** control tokens this request reads as text (tool-call markers); null: none is shown */
  shownTokens: ReadonlySet<number> | null = null;

  constructor(ticket: number, index: number, seq: Sequence, maxNew: number) {
    this.ticket = ticket;
    this.index = index;
    this.seq = seq;
    this.maxNew = maxNew;
    this.startLen = seq.length;
  }

  get produced(): number {
    return this.seq.length - this.startLen;
  }

  /** sequence slots used while running (1, or the number of beams) */
  abstract get width(): number;

  /** KV cells this job may grow to: every slot may add maxNew tokens */
  get reserve(): number {
    return this.seq.length + this.width * this.maxNew;
  }
}

export class SampleJob extends JobBase {
  readonly kind = "sample";
  readonly width = 1;
  readonly sampler: TokenSampler;
  /** alternatives per token when log-probabilities are asked for; null: none */
  readonly logprobs: number | null;
  /** log-probabilities of tokens whose text has not been sent yet (an incomplete character) */
  readonly pendingLogprobs: TokenLogprob[] = [];

  constructor(ticket: number, index: number, seq: Sequence, maxNew: number, sampler: TokenSampler, logprobs: number | null = null) {
    super(ticket, index, seq, maxNew);
    this.sampler = sampler;
    this.logprobs = logprobs;
  }

}

export interface Beam {
  seqId: number;
  /** the token to feed next (the beam's newest) */
  token: number;
}

export class BeamJob extends JobBase {
  readonly kind = "beam";
  readonly search: BeamSearch;
  /** slots borrowed at admission, besides the sequence's own */
  spare: number[] = [];
  /** live beams once the prompt is decoded; empty while prefilling */
  beams: Beam[] = [];
  /** logits rows of the live beams in the current step, by beam index */
  rows: Float32Array[] = [];
  /** each live beam's constraint state, by beam index (with a constraint; null: a beam that took a refused token) */
  constraints: (Constraint | null)[] = [];
  /** position of the first generated token (= prompt length when beams started) */
  basePos = 0;
  /** settled tokens already streamed */
  emitted = 0;

  constructor(ticket: number, index: number, seq: Sequence, maxNew: number, search: BeamSearch) {
    super(ticket, index, seq, maxNew);
    this.search = search;
  }

  get width(): number {
    return this.search.numBeams;
  }

}

export type Job = SampleJob | BeamJob;
