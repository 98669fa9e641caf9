// Anthropic's Messages API as a thin adapter over the conversation core: the body becomes a
// conversation (request.ts), the core runs the turn, and the reply's events become content blocks
// (content.ts): one message, or its Server-Sent Events (message_start, ping, content_block_*,
// message_delta, message_stop). No Elysia here.
import { planOrRefuse, startTurn, type CoreDeps, type TurnRequest, type TurnResult } from "../../conversation/core.ts";
import { usageOf, type Choice } from "../../conversation/engine-run.ts";
import type { Reply } from "../../conversation/turn.ts";
import { anthropicType, HttpError } from "../errors.ts";
import { inOpenAITerms } from "../openai/sampling.ts";
import type { OpenAIService } from "../openai/service.ts";
import { namedEvent, sseResponse } from "../sse.ts";
import type { Vocabulary } from "../tokenize/vocab.ts";
import { ContentBuilder, type BlockEvent } from "./content.ts";
import type { CountTokensInput, MessagesInput } from "./model.ts";
import { conversationOf, samplingOf } from "./request.ts";
import { randomHex } from "../../ids.ts";

type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "model_context_window_exceeded";

export class MessagesService {
  constructor(
    private readonly openai: OpenAIService,
    private readonly vocab: Vocabulary,
  ) {}

  /** POST /v1/messages: one message, or its event stream */
  async create(body: MessagesInput, signal: AbortSignal): Promise<Response | object> {
    const core = this.#core(body);
    const request: TurnRequest = {
      conv: inAnthropicTerms(() => conversationOf(body, this.openai.settings)),
      sampling: inAnthropicTerms(() => samplingOf(body)), maxTokens: body.max_tokens, logprobs: null, signal,
    };
    const blocks = new ContentBuilder();
    const head = { id: `msg_${randomHex()}`, type: "message", role: "assistant", model: this.openai.modelId };
    const stopOf = (c: Choice, reply: Reply) => stopReason(c, reply, body.max_tokens);
    if (!body.stream) {
      const turn = startTurn(core, request, { onEvents: (_i, events) => void blocks.add(events) });
      const { choices, replies } = await turn.result;
      blocks.close();
      return { ...head, content: blocks.content, ...stopOf(choices[0]!, replies[0]!), usage: usage(choices) };
    }
    const send = (push: (chunk: string) => void, events: BlockEvent[]) => events.forEach(([name, data]) => push(namedEvent(name, data)));
    return sseResponse<TurnResult>(this.openai.settings.stallTimeoutS * 1000, {
      start: ({ push, begin }) => {
        const turn = startTurn(core, request, {
          onStart: ({ promptTokens, cachedTokens }) => {
            // as Anthropic counts them: input_tokens are the prompt tokens the cache did not hold
            const counts = { input_tokens: promptTokens - cachedTokens, output_tokens: 0, cache_read_input_tokens: cachedTokens, cache_creation_input_tokens: 0 };
            const message = { ...head, content: [], stop_reason: null, stop_sequence: null, usage: counts };
            push(namedEvent("message_start", { type: "message_start", message }));
            push(namedEvent("ping", { type: "ping" }));
            begin();
          },
          onEvents: (_i, events) => send(push, blocks.add(events)),
        });
        return turn;
      },
      end: ({ choices, replies }, push) => {
        send(push, blocks.close());
        const { input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens } = usage(choices);
        push(namedEvent("message_delta", {
          type: "message_delta", delta: stopOf(choices[0]!, replies[0]!),
          usage: { input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens },
        }));
        push(namedEvent("message_stop", { type: "message_stop" }));
      },
      fail: (err, push) => push(namedEvent("error", { type: "error", error: { type: anthropicType(err.status), message: err.message } })),
    });
  }

  /** POST /v1/messages/count_tokens: the prompt's tokens as the chat template renders it, tools included */
  countTokens(body: CountTokensInput): { input_tokens: number } {
    const conv = inAnthropicTerms(() => conversationOf(body, this.openai.settings));
    const { pieces } = inAnthropicTerms(() => planOrRefuse(this.openai.template(), conv), this.openai.settings.ctxSize);
    return { input_tokens: this.vocab.countPieces(pieces) };
  }

  /**
   * The core with Anthropic's words for refusals, max_tokens as a ceiling (the answer stops where
   * the context is full: stop_reason model_context_window_exceeded, as Anthropic's newer models
   * do).
   */
  #core(body: MessagesInput): CoreDeps {
    const schemaField = body.output_format ? "output_format.schema" : "output_config.format.schema";
    const words = (err: HttpError) => anthropicError(err, this.openai.settings.ctxSize, schemaField);
    const base = this.openai.core(words);
    return {
      ...base,
      config: (body, maxTokens, logprobs) => {
        const config = base.config(body, undefined, logprobs); // fitted to the context
        if (maxTokens !== undefined) config.max_new_tokens = maxTokens;
        return config;
      },
    };
  }
}

/** why a reply stopped, in Anthropic's terms */
function stopReason(c: Choice, reply: Reply, maxTokens: number): { stop_reason: StopReason; stop_sequence: string | null } {
  if (c.finish === "length") return { stop_reason: c.completionTokens >= maxTokens ? "max_tokens" : "model_context_window_exceeded", stop_sequence: null };
  if (reply.calls.length > 0) return { stop_reason: "tool_use", stop_sequence: null };
  if (c.stopSequence !== null) return { stop_reason: "stop_sequence", stop_sequence: c.stopSequence };
  return { stop_reason: "end_turn", stop_sequence: null };
}

/** Anthropic's usage: input_tokens are the prompt tokens the cache did not hold (its cache_read_input_tokens) */
function usage(choices: Choice[]) {
  const u = usageOf(choices, 1);
  return {
    input_tokens: u.promptTokens - u.cachedTokens, output_tokens: u.completionTokens,
    cache_read_input_tokens: u.cachedTokens, cache_creation_input_tokens: 0, service_tier: "standard",
  };
}

/** `f()`, its refusals in Anthropic's terms */
function inAnthropicTerms<T>(f: () => T, ctxSize = 0): T {
  try {
    return f();
  } catch (err) {
    throw err instanceof HttpError ? anthropicError(err, ctxSize) : err;
  }
}

/**
 * A refusal in Anthropic's words: a prompt that does not fit is "prompt is too long: N tokens > M
 * maximum" (the text its clients look for), the seed API's generation_config fields are the body's
 * own, and structured output's field is output_config.format.schema (or the beta's output_format.schema).
 */
function anthropicError(err: HttpError, ctxSize: number, schemaField = "output_config.format.schema"): HttpError {
  if (err.code === "context_exceeded") {
    const m = /^prompt has (\d+) tokens/.exec(err.message);
    const message = m && ctxSize > 0
      ? `prompt is too long: ${m[1]} tokens > ${ctxSize - 1} maximum (the messages as the chat template renders them, in CTX_SIZE ${ctxSize} less one token for the answer)`
      : err.message.replaceAll("max_new_tokens", "max_tokens");
    return new HttpError(err.status === 422 ? 400 : err.status, "context_length_exceeded", message, "messages", err.headers);
  }
  const e = inOpenAITerms(err);
  if (!e.field?.startsWith("json_schema")) return e;
  const rename = (s: string) => s.replaceAll("json_schema", schemaField);
  return new HttpError(e.status, e.code, rename(e.message), rename(e.field), e.headers);
}
