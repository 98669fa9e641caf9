// Engine and seed-API refusals in OpenAI's words, at the /v1 boundary: the seed API keeps its own
// codes and fields (its contract is binding), /v1 clients get the ones OpenAI's SDKs and tools know.
import { HttpError } from "../errors.ts";
import { inOpenAITerms } from "./sampling.ts";

/** the seed API's code for a prompt (or session) plus max_new_tokens that does not fit the context */
const SEED_CONTEXT_CODE = "context_exceeded";

/**
 * A context overflow as OpenAI reports it: code "context_length_exceeded", param "messages" on
 * /v1/chat/completions and "prompt" on /v1/completions (whichever part overflowed: prompt,
 * max_tokens, a continued session, the beams' cells), status 400 (errors.ts maps 422 to it).
 * Any other error is returned as it is.
 */
export function openaiContextError(err: HttpError, route: "chat" | "completions"): HttpError {
  if (err.code !== SEED_CONTEXT_CODE) return err;
  let message = err.message.replaceAll("max_new_tokens", "max_tokens");
  if (route === "chat") message = message.replace(/^prompt has (\d+) tokens/, "the messages have $1 tokens (as the chat template renders them)");
  return new HttpError(err.status === 422 ? 400 : err.status, "context_length_exceeded", message, route === "chat" ? "messages" : "prompt", err.headers);
}

/** A refusal in /v1's words on `route`: the seed API's field names as OpenAI's, a context overflow as OpenAI reports it. */
export const openaiWords = (route: "chat" | "completions") => (err: HttpError): HttpError => openaiContextError(inOpenAITerms(err), route);
