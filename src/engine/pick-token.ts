// One sampling job's next token from its logits row: the constraint's mask first (a sequence with
// none pays nothing), then the sampler, as Hugging Face applies prefix_allowed_tokens_fn before its
// other processors. Greedy takes the best allowed token: when the raw argmax is allowed, no mask is
// written into the row at all. A mask that allows few tokens (most steps of a JSON Schema) is
// sampled among those tokens only, without a pass over the whole vocabulary.
import type { Context } from "../native/index.ts";
import { allowedIds, applyTokenMask, maskAllows } from "../sampling/token-mask.ts";
import type { SampleJob } from "./job.ts";
import type { Utf8Guard } from "./utf8.ts";

/** What was picked: a token (with the row its log-probabilities come from, when asked), or the constraint's end. */
export type Pick = { token: number; scored: Float32Array | null } | { complete: true };

/** the allowed tokens of the row being sampled (the engine thread samples one row at a time) */
let allowed = new Int32Array(0);

/** `best`: the raw row's argmax (the engine has it already). The row is overwritten (mask, penalties, temperature). */
export function pickToken(ctx: Context, job: SampleJob, row: number, best: number, utf8: Utf8Guard): Pick {
  const { sampler, constraint } = job;
  const logits = ctx.logitsRow(row);
  if (!constraint) {
    // log-probabilities come from the raw row, which the sampler overwrites: a copy, only when asked
    const scored = job.logprobs === null ? null : logits.slice();
    return { token: sampler.plainGreedy ? best : sampler.sample(logits, job.seq.tokens), scored };
  }
  const mask = constraint.mask();
  if (constraint.complete) return { complete: true };
  let token: number;
  let scored: Float32Array | null = null;
  const need = job.utf8Need; // continuation bytes the text owes: constrained text stays valid UTF-8
  if (sampler.plainGreedy && maskAllows(mask, best) && job.logprobs === null && utf8.ok(need, best)) token = best;
  else {
    const count = job.logprobs === null ? sparse(mask, logits.length) : -1;
    if (count === 0) return { complete: true }; // nothing can follow
    utf8.strike(need, logits); // one draw, among the tokens that keep the text valid UTF-8
    if (count > 0) token = sampler.sampleAmong(logits, allowed, count, job.seq.tokens);
    else {
      if (applyTokenMask(logits, mask) === 0) return { complete: true };
      scored = job.logprobs === null ? null : logits.slice(); // the masked distribution's log-probabilities
      token = sampler.sample(logits, job.seq.tokens);
    }
    if (logits[token] === -Infinity) return { complete: true }; // only broken text could follow
  }
  constraint.accept(token);
  return { token, scored };
}

/** How many tokens the mask allows (their ids in `allowed`), or -1 when more than a quarter of the vocabulary: then a dense pass is as cheap. */
function sparse(mask: Int32Array, nVocab: number): number {
  if (allowed.length < nVocab) allowed = new Int32Array(nVocab);
  return allowedIds(mask, nVocab, allowed, nVocab >>> 2);
}
