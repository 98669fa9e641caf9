// OpenAI's sampling fields as a generate() config: temperature 0 is greedy, no top_k unless asked,
// logit_bias checked against the vocabulary, penalties and logprobs for plain sampling only.
import type { GenerationConfig } from "../../engine/messages.ts";
import { HttpError } from "../errors.ts";
import type { GenerateService } from "../generate/service.ts";
import type { Sampling } from "../../conversation/core.ts";

/** `logprobs`: alternatives per token when asked for, else null; `maxTokens` undefined: fit the context */
export function openaiConfig(body: Sampling, maxTokens: number | undefined, logprobs: number | null, nVocab: number, generate: GenerateService): GenerationConfig {
  const temperature = body.temperature ?? 1;
  const beams = body.num_beams ?? 1;
  const bias = logitBias(body.logit_bias, nVocab);
  const presence = body.presence_penalty ?? 0;
  const frequency = body.frequency_penalty ?? 0;
  if (beams > 1) {
    const other = bias.length ? "logit_bias" : presence ? "presence_penalty" : frequency ? "frequency_penalty" : logprobs !== null ? "logprobs" : null;
    if (other) throw new HttpError(400, "invalid_field", `${other} works with plain sampling only, not with num_beams > 1`, other);
  }
  let config: GenerationConfig;
  try {
    config = generate.config({
      do_sample: temperature > 0, temperature: temperature > 0 ? temperature : 1, top_p: body.top_p ?? 1,
      top_k: body.top_k ?? 0, repetition_penalty: body.repetition_penalty ?? 1, num_beams: beams,
      length_penalty: body.length_penalty ?? 1,
      ...(maxTokens !== undefined ? { max_new_tokens: maxTokens } : {}), ...(body.seed != null ? { seed: body.seed } : {}),
    });
  } catch (err) {
    throw err instanceof HttpError ? inOpenAITerms(err) : err;
  }
  if (bias.length) config.logit_bias = bias;
  if (presence) config.presence_penalty = presence;
  if (frequency) config.frequency_penalty = frequency;
  if (logprobs !== null) config.logprobs = logprobs;
  const constraint = generate.constraint(body);
  if (constraint) config.constraint = constraint;
  return config;
}

/** {"token id": bias} -> [id, bias] pairs; an id that is not an integer in the vocabulary is a 400 */
function logitBias(map: Record<string, number> | null | undefined, nVocab: number): [number, number][] {
  if (!map) return [];
  const keys = Object.keys(map);
  if (keys.length > 1024) throw new HttpError(400, "invalid_field", `logit_bias has ${keys.length} entries; at most 1024`, "logit_bias");
  return keys.map((k) => {
    const id = /^\d{1,10}$/.test(k) ? Number(k) : NaN;
    if (!(id < nVocab)) throw new HttpError(400, "invalid_field", `logit_bias key "${k.slice(0, 40)}" is not a token id of this model (0..${nVocab - 1})`, "logit_bias");
    return [id, map[k]!] as [number, number];
  });
}

/**
 * A refusal worded for the seed API (generation_config.max_new_tokens, from the config check or the
 * engine) in /v1's terms: the field is max_tokens, the others lose their generation_config prefix.
 */
export function inOpenAITerms(err: HttpError): HttpError {
  if (!err.field?.startsWith("generation_config.") && !err.message.includes("max_new_tokens")) return err;
  const field = err.field?.replace("generation_config.max_new_tokens", "max_tokens").replace("generation_config.", "");
  return new HttpError(err.status, err.code, err.message.replaceAll("max_new_tokens", "max_tokens"), field, err.headers);
}
