// Turning submitted items into jobs: find or create each sequence, check it fits, pick the decoder.
import type { Settings } from "../config.ts";
import type { Model } from "../native/index.ts";
import { BeamSearch } from "../sampling/beam-search.ts";
import { Rng } from "../sampling/rng.ts";
import { TokenSampler } from "../sampling/sampler.ts";
import { BeamJob, SampleJob, type Job } from "./job.ts";
import { busyError, type ErrorInfo, type GenerationConfig, type PromptSpec } from "./messages.ts";
import type { SequenceTable } from "./seq-table.ts";
import { Sequence } from "./sequence.ts";

export class RequestError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

const refuse = (status: number, code: string, message: string, field?: string): never => {
  throw new RequestError({ status, code, message, field });
};

/** An existing session to bring in line with a new prompt (PromptSpec.sync), once the whole request is checked. */
export interface SyncEdit {
  seq: Sequence;
  tokens: Int32Array;
}

/** Keeps the session's tokens it shares with `tokens`, then appends the rest (at least the last token is decoded again). */
export function applySync(table: SequenceTable, { seq, tokens }: SyncEdit): void {
  const have = seq.tokens.view();
  let shared = 0;
  while (shared < have.length && shared < tokens.length && have[shared] === tokens[shared]) shared++;
  if (shared === tokens.length && shared === have.length) return; // nothing new: it continues as it is
  table.truncate(seq, Math.min(shared, tokens.length - 1));
  for (let i = seq.length; i < tokens.length; i++) seq.tokens.push(tokens[i]!);
}

/** Checks the whole request first (all or nothing); returns each item's sequence, new ones not yet in the table. */
export function resolveSequences(model: Model, table: SequenceTable, settings: Settings, items: PromptSpec[], config: GenerationConfig, syncs?: SyncEdit[]): Sequence[] {
  if (config.num_beams > settings.parallel) {
    refuse(422, "too_many_beams", `num_beams ${config.num_beams} can never run: at most PARALLEL (${settings.parallel}) sequences decode at once`, "generation_config.num_beams");
  }
  const minNew = config.fitMaxNewTokens ? 1 : config.max_new_tokens; // defaults only need room for one token
  const { ctxSize } = settings;
  // one shared KV buffer: all beams of a request must fit in it at once, or it would wait forever
  const checkBeamCells = (length: number) => {
    const need = length + config.num_beams * minNew;
    if (settings.kvUnified && config.num_beams > 1 && need > settings.kvCells) {
      refuse(422, "context_exceeded", `num_beams ${config.num_beams} × max_new_tokens ${minNew} + ${length} prompt tokens = ${need} KV cells > KV_CELLS ${settings.kvCells}`, "generation_config.num_beams");
    }
  };
  return items.map((item, i) => {
    const field = (name: string) => (items.length > 1 ? `prompts[${i}].${name}` : name);
    const existing = table.get(item.requestId);
    /** the item's prompt as tokens, checked to fit */
    const prompt = () => {
      const tokens = promptTokens(model, item, settings.parseSpecial);
      if (tokens.length === 0) refuse(422, "empty_prompt", "the prompt has no tokens", field("prompt"));
      if (tokens.length + minNew > ctxSize) {
        refuse(422, "context_exceeded", `prompt has ${tokens.length} tokens; with max_new_tokens ${minNew} that is ${tokens.length + minNew} > CTX_SIZE ${ctxSize}`, field("prompt"));
      }
      checkBeamCells(tokens.length);
      return tokens;
    };
    if (existing && item.sync) {
      if (existing.busy) throw new RequestError(busyError(item.requestId, field("request_id")));
      syncs?.push({ seq: existing, tokens: prompt() });
      return existing;
    }
    if (existing) {
      if (existing.busy) throw new RequestError(busyError(item.requestId, field("request_id")));
      if (existing.length + minNew > ctxSize) {
        refuse(422, "context_exceeded", `cached sequence "${item.requestId}" has ${existing.length} tokens; with max_new_tokens ${minNew} that is ${existing.length + minNew} > CTX_SIZE ${ctxSize}`, "generation_config.max_new_tokens");
      }
      checkBeamCells(existing.length);
      return existing;
    }
    if (item.prompt === "") refuse(422, "empty_prompt", `the prompt is empty and request_id "${item.requestId}" has no session to continue`, field("prompt"));
    return new Sequence(item.requestId, prompt(), model.info.nVocab);
  });
}

/** The prompt's tokens: see PromptSpec.pieces. */
export function promptTokens(model: Model, item: PromptSpec, parseSpecial: boolean): Int32Array {
  if (!item.pieces) return model.tokenize(item.prompt, true, parseSpecial);
  const parts = item.pieces.map((p) => model.tokenize(p, false, true));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A job for the i-th item: sampling (num_beams 1) or beam search. */
export function makeJob(ticket: number, i: number, seq: Sequence, config: GenerationConfig, settings: Settings, eos: number[], seedOffset = 0): Job {
  const maxNew = config.fitMaxNewTokens ? Math.min(config.max_new_tokens, settings.ctxSize - seq.length) : config.max_new_tokens;
  // an item's draws depend on its own seed only, never on where it sits in the batch
  const seed = config.seed === undefined ? undefined : config.seed + seedOffset;
  const sampling = { doSample: config.do_sample, temperature: config.temperature, topK: config.top_k, topP: config.top_p, repetitionPenalty: config.repetition_penalty };
  if (config.num_beams <= 1) {
    const bias = config.logit_bias?.length ? { ids: Int32Array.from(config.logit_bias, ([t]) => t), biases: Float32Array.from(config.logit_bias, ([, b]) => b) } : undefined;
    const sampler = new TokenSampler({ ...sampling, seed, logitBias: bias, presencePenalty: config.presence_penalty, frequencyPenalty: config.frequency_penalty });
    return new SampleJob(ticket, i, seq, maxNew, sampler, config.logprobs ?? null);
  }
  const search = new BeamSearch({
    ...sampling, numBeams: config.num_beams, lengthPenalty: config.length_penalty, eosTokens: eos,
    maxNewTokens: maxNew, rng: new Rng(seed), promptTokens: seq.tokens.view(),
  });
  return new BeamJob(ticket, i, seq, maxNew, search);
}
