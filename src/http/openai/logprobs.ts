// Log-probabilities in OpenAI's two response shapes, from the engine's per-token entries.
import type { TokenLogprob } from "../../engine/messages.ts";

/** chat: {content: [{token, logprob, bytes, top_logprobs}], refusal} */
export function chatLogprobs(entries: TokenLogprob[]) {
  return {
    content: entries.map((e) => ({
      token: e.token, logprob: e.logprob, bytes: e.bytes,
      top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
    })),
    refusal: null,
  };
}

/** completions: parallel arrays; `offset` is where the first token's text starts in the choice's text */
export function completionLogprobs(entries: TokenLogprob[], offset = 0) {
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) text_offset.push(at), (at += e.token.length);
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}
