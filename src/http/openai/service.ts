// The OpenAI-compatible use-cases over the conversation core and the same engine client, defaults
// check and text stream as the seed API. No Elysia here. A request without request_id is one-off
// (its sequence is dropped when it ends); with one it continues that session as the seed API does.
// Chat's own shapes (messages, tool calls) are in chat.ts.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { Settings } from "../../config.ts";
import { ChatTemplate, DEFAULT_CHAT_TEMPLATE } from "../../conversation/chat-template.ts";
import { worded, type CoreDeps, type Sampling } from "../../conversation/core.ts";
import { runTurn, usageOf, type Choice, type Run } from "../../conversation/engine-run.ts";
import { stopList } from "../../conversation/stop-filter.ts";
import type { EngineClient } from "../../engine/client.ts";
import type { GenerationConfig, PromptSpec, TokenLogprob } from "../../engine/messages.ts";
import { HttpError, requireModel } from "../errors.ts";
import { wellFormed, type GenerateService } from "../generate/service.ts";
import { dataEvent, sseResponse } from "../sse.ts";
import { chatTurn } from "./chat.ts";
import { openaiWords } from "./errors.ts";
import { systemFingerprint } from "./fingerprint.ts";
import { completionLogprobs } from "./logprobs.ts";
import type { ChatInput, CompletionInput } from "./model.ts";
import { openaiConfig } from "./sampling.ts";
import { randomHex } from "../../ids.ts";

export type Common = CompletionInput | ChatInput;
export interface Meta {
  id: string;
  created: number;
  model: string;
  system_fingerprint: string;
}

export const newId = (prefix: string) => `${prefix}-${randomHex()}`;

export class OpenAIService {
  #template: ChatTemplate | null = null;

  constructor(
    private readonly engine: EngineClient,
    readonly settings: Settings,
    readonly generate: GenerateService,
  ) {}

  /** the served model's id: its file name without .gguf (any `model` a client sends is accepted) */
  get modelId(): string {
    return basename(this.engine.model?.path ?? this.settings.modelPath ?? "model").replace(/\.gguf$/i, "");
  }

  models() {
    return { object: "list", data: [this.#modelObject()] };
  }

  model(id: string) {
    if (id !== this.modelId) throw new HttpError(404, "model_not_found", `the model "${id}" does not exist; this server serves "${this.modelId}"`, "model");
    return this.#modelObject();
  }

  #modelObject() {
    return { id: this.modelId, object: "model", created: Math.floor(Date.now() / 1000), owned_by: "bun-llm-server" };
  }

  /** The chat template: CHAT_TEMPLATE's file, else the model's own, else ChatML. */
  template(): ChatTemplate {
    if (this.#template) return this.#template;
    requireModel(this.engine);
    const m = this.engine.model!;
    const source = this.settings.chatTemplateFile ? readFileSync(this.settings.chatTemplateFile, "utf8") : m.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
    return (this.#template = new ChatTemplate(source, m));
  }

  meta(prefix: string): Meta {
    requireModel(this.engine);
    return { id: newId(prefix), created: Math.floor(Date.now() / 1000), model: this.modelId, system_fingerprint: systemFingerprint(this.engine.model!) };
  }

  async completions(body: CompletionInput, signal: AbortSignal): Promise<Response | object> {
    if (body.echo) throw new HttpError(400, "unsupported", "echo is not supported", "echo");
    if (body.suffix != null && body.suffix !== "") throw new HttpError(400, "unsupported", "suffix (insertion) is not supported", "suffix");
    if (body.best_of != null && body.best_of !== (body.n ?? 1)) throw new HttpError(400, "unsupported", "best_of is supported only equal to n (every candidate is returned)", "best_of");
    const prompts = typeof body.prompt === "string" ? [body.prompt] : body.prompt;
    prompts.forEach((p, i) => wellFormed(p, typeof body.prompt === "string" ? "prompt" : `prompt[${i}]`));
    const items = this.items(body, prompts.map((prompt) => ({ prompt })));
    const config = this.config(body, body.max_tokens ?? 16, body.logprobs ?? null);
    const lp = (entries: TokenLogprob[]) => (body.logprobs != null ? completionLogprobs(entries) : null);
    const meta = this.meta("cmpl");
    const stops = stopList(body.stop);
    const run = { items, config, stops, signal };
    if (body.stream) {
      const chunk = (index: number, text: string, finish: string | null, entries: TokenLogprob[]) =>
        ({ ...meta, object: "text_completion", choices: [{ index, text, logprobs: lp(entries), finish_reason: finish }] });
      return this.sse(body, meta, "text_completion", (send, begin) => this.run({
        ...run, onStart: begin,
        onDelta: (i, text, entries) => send([chunk(i, text, null, entries)]),
        onChoice: (c) => send([chunk(c.index, "", c.finish, [])]),
      }, "completions"));
    }
    const choices = await this.run(run, "completions").result;
    return {
      ...meta, object: "text_completion",
      choices: choices.map((c) => ({ index: c.index, text: c.text, logprobs: lp(c.logprobs), finish_reason: c.finish })),
      usage: usage(choices, body.n ?? 1),
    };
  }

  chat(body: ChatInput, signal: AbortSignal): Promise<Response | object> {
    return chatTurn(this, body, signal);
  }

  /** n items per prompt: one-off sequences, or the client's request_id (one prompt, n = 1) */
  items(body: Sampling, prompts: { prompt: string; pieces?: string[]; sync?: boolean }[]): PromptSpec[] {
    const n = body.n ?? 1;
    if (body.request_id && (n > 1 || prompts.length > 1)) {
      throw new HttpError(400, "invalid_field", "request_id names one session: it needs one prompt and n = 1", "request_id");
    }
    if (prompts.length * n > this.settings.maxBatchPrompts) {
      throw new HttpError(400, "batch_too_large", `${prompts.length * n} sequences (prompts × n) > MAX_BATCH_PROMPTS ${this.settings.maxBatchPrompts}`, "n");
    }
    if (body.request_id) {
      wellFormed(body.request_id, "request_id");
      return [{ requestId: body.request_id, ...prompts[0]! }];
    }
    const base = newId("v1");
    return prompts.flatMap((p, i) => Array.from({ length: n }, (_, j) => ({ requestId: `${base}-${i}-${j}`, ...p, ephemeral: true, seedOffset: j })));
  }

  config(body: Sampling, maxTokens: number | undefined, logprobs: number | null): GenerationConfig {
    requireModel(this.engine);
    return openaiConfig(body, maxTokens, logprobs, this.engine.model!.nVocab, this.generate);
  }

  /** The engine run, its refusals in /v1's terms. */
  run(o: Run, route: "chat" | "completions") {
    return worded(runTurn(this.engine, o), openaiWords(route));
  }

  /** The conversation core's view of this server, refusals worded by `words` (each API its own). */
  core(words: (err: HttpError) => HttpError): CoreDeps {
    return {
      template: () => this.template(),
      items: (body, prompts) => this.items(body, prompts),
      config: (body, maxTokens, logprobs) => this.config(body, maxTokens, logprobs),
      constraint: (body) => this.generate.constraint(body),
      run: (o) => runTurn(this.engine, o),
      words,
    };
  }

  /**
   * Server-Sent Events of OpenAI's chat and completions: `start` runs the generation and sends its
   * chunks (usage: null on each when include_usage is asked), then the usage chunk, then [DONE]; a
   * failure after the response started is an error event.
   */
  sse(body: Common, meta: Meta, object: string, start: (send: (chunks: object[]) => void, begin: () => void) => { result: Promise<Choice[]>; abort(): void }): Promise<Response> {
    const includeUsage = body.stream_options?.include_usage === true;
    return sseResponse(this.settings.stallTimeoutS * 1000, {
      start: ({ push, begin }) => start((chunks) => chunks.forEach((c) => push(dataEvent(includeUsage ? { ...c, usage: null } : c))), begin),
      end: (choices, push) => {
        if (includeUsage) push(dataEvent({ ...meta, object, choices: [], usage: usage(choices, body.n ?? 1) }));
        push("data: [DONE]\n\n");
      },
      fail: (err, push) => push(dataEvent({ error: { message: err.message, type: "server_error", param: null, code: err.code } })),
    });
  }
}

/** OpenAI's usage, with the prompt tokens the cache or a reused prefix supplied */
export function usage(choices: Choice[], n: number) {
  const u = usageOf(choices, n);
  return {
    prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}
