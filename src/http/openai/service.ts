// The OpenAI-compatible use-cases over the same engine client, defaults check and text stream as the
// seed API. No Elysia here. A request without request_id is one-off (its sequence is dropped when
// it ends); with one it continues that session exactly as the seed API does.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { Settings } from "../../config.ts";
import type { EngineClient } from "../../engine/client.ts";
import type { GenerationConfig, PromptSpec, TokenLogprob } from "../../engine/messages.ts";
import { HttpError, requireModel } from "../errors.ts";
import { wellFormed, type GenerateService } from "../generate/service.ts";
import { TokenTextStream } from "../generate/text-stream.ts";
import { ChatTemplate, DEFAULT_CHAT_TEMPLATE } from "./chat-template.ts";
import { chatLogprobs, completionLogprobs } from "./logprobs.ts";
import type { ChatInput, CompletionInput } from "./model.ts";
import { inOpenAITerms, openaiConfig } from "./sampling.ts";
import { StopFilter } from "./stop.ts";

export interface Choice {
  index: number;
  text: string;
  finish: "stop" | "length";
  promptTokens: number;
  completionTokens: number;
  /** per token of `text`, when asked for */
  logprobs: TokenLogprob[];
}

type Common = CompletionInput | ChatInput;
interface Run {
  items: PromptSpec[];
  config: GenerationConfig;
  stops: string[];
  signal: AbortSignal;
  onStart?(): void;
  onDelta?(index: number, text: string, logprobs: TokenLogprob[]): void;
  onChoice?(choice: Choice): void;
}

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" };
const sse = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
const newId = (prefix: string) => `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`;

export class OpenAIService {
  #template: ChatTemplate | null = null;

  constructor(
    private readonly engine: EngineClient,
    readonly settings: Settings,
    private readonly generate: GenerateService,
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

  async completions(body: CompletionInput, signal: AbortSignal): Promise<Response | object> {
    if (body.echo) throw new HttpError(400, "unsupported", "echo is not supported", "echo");
    const prompts = typeof body.prompt === "string" ? [body.prompt] : body.prompt;
    prompts.forEach((p, i) => wellFormed(p, typeof body.prompt === "string" ? "prompt" : `prompt[${i}]`));
    const items = this.#items(body, prompts.map((prompt) => ({ prompt })));
    const config = this.#config(body, body.max_tokens ?? 16, body.logprobs ?? null);
    const lp = (entries: TokenLogprob[]) => (body.logprobs != null ? completionLogprobs(entries) : null);
    const meta = { id: newId("cmpl"), created: Math.floor(Date.now() / 1000), model: this.modelId };
    const stops = stopList(body.stop);
    if (body.stream) {
      const chunk = (index: number, text: string, finish: string | null, entries: TokenLogprob[]) =>
        ({ ...meta, object: "text_completion", choices: [{ index, text, logprobs: lp(entries), finish_reason: finish }] });
      return this.#stream({ items, config, stops, signal }, body, meta, "text_completion", chunk, () => []);
    }
    const choices = await this.#run({ items, config, stops, signal }).result;
    return {
      ...meta, object: "text_completion",
      choices: choices.map((c) => ({ index: c.index, text: c.text, logprobs: lp(c.logprobs), finish_reason: c.finish })),
      usage: usage(choices, body.n ?? 1),
    };
  }

  async chat(body: ChatInput, signal: AbortSignal): Promise<Response | object> {
    if (body.top_logprobs != null && !body.logprobs) throw new HttpError(400, "invalid_field", "top_logprobs needs logprobs: true", "top_logprobs");
    const messages = body.messages.map((m, i) => {
      const content = typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join("");
      wellFormed(content, `messages[${i}].content`);
      return { role: m.role, content, ...(m.name ? { name: m.name } : {}) };
    });
    let rendered: { prompt: string; pieces: string[] };
    try {
      rendered = this.template().pieces(messages);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, "template_error", `the chat template refused these messages: ${(err as Error).message}`, "messages");
    }
    // with a request_id the session follows the conversation: it keeps what it shares with it
    const items = this.#items(body, [{ ...rendered, sync: true }]);
    const config = this.#config(body, body.max_completion_tokens ?? body.max_tokens ?? undefined, body.logprobs ? body.top_logprobs ?? 0 : null);
    const lp = (entries: TokenLogprob[]) => (body.logprobs ? chatLogprobs(entries) : null);
    const meta = { id: newId("chatcmpl"), created: Math.floor(Date.now() / 1000), model: this.modelId };
    const stops = stopList(body.stop);
    if (body.stream) {
      const chunk = (index: number, text: string | null, finish: string | null, entries: TokenLogprob[]) =>
        ({ ...meta, object: "chat.completion.chunk", choices: [{ index, delta: finish ? {} : { content: text }, logprobs: finish ? null : lp(entries), finish_reason: finish }] });
      const first = (n: number) => Array.from({ length: n }, (_, index) => ({ ...meta, object: "chat.completion.chunk", choices: [{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] }));
      return this.#stream({ items, config, stops, signal }, body, meta, "chat.completion.chunk", chunk, first);
    }
    const choices = await this.#run({ items, config, stops, signal }).result;
    return {
      ...meta, object: "chat.completion",
      choices: choices.map((c) => ({ index: c.index, message: { role: "assistant", content: c.text }, logprobs: lp(c.logprobs), finish_reason: c.finish })),
      usage: usage(choices, body.n ?? 1),
    };
  }

  /** n items per prompt: one-off sequences, or the client's request_id (one prompt, n = 1) */
  #items(body: Common, prompts: { prompt: string; pieces?: string[]; sync?: boolean }[]): PromptSpec[] {
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

  #config(body: Common, maxTokens: number | undefined, logprobs: number | null): GenerationConfig {
    requireModel(this.engine);
    return openaiConfig(body, maxTokens, logprobs, this.engine.model!.nVocab, this.generate);
  }

  /** Server-Sent Events: the response starts once generation does (a queue timeout is still a 503) */
  #stream(run: Omit<Run, "onStart" | "onDelta" | "onChoice">, body: Common, meta: { id: string; created: number; model: string }, object: string,
    chunk: (index: number, text: string, finish: string | null, logprobs: TokenLogprob[]) => object, first: (n: number) => object[]): Promise<Response> {
    const includeUsage = body.stream_options?.include_usage === true;
    const withUsage = (o: object) => (includeUsage ? { ...o, usage: null } : o);
    return new Promise((resolve, reject) => {
      const out = new TokenTextStream(() => job.abort(), this.settings.stallTimeoutS * 1000);
      let responded = false;
      const respond = () => void (!responded && ((responded = true), resolve(new Response(out.body, { headers: SSE_HEADERS }))));
      const job = this.#run({
        ...run,
        onStart: () => {
          for (const c of first(run.items.length)) out.push(sse(withUsage(c)), 0);
          out.begin();
          respond();
        },
        onDelta: (i, text, logprobs) => out.push(sse(withUsage(chunk(i, text, null, logprobs))), 0),
        onChoice: (c) => out.push(sse(withUsage(chunk(c.index, "", c.finish, []))), 0),
      });
      job.result.then(
        (choices) => {
          if (includeUsage) out.push(sse({ ...meta, object, choices: [], usage: usage(choices, body.n ?? 1) }), 0);
          out.push("data: [DONE]\n\n", 0);
          out.end();
          respond();
        },
        (err: HttpError) => {
          if (!responded) return reject(err);
          out.push(sse({ error: { message: err.message, type: "server_error", param: null, code: err.code } }), 0);
          out.end();
        },
      );
    });
  }

  /** One engine submit for every item; each item's text passes its stop filter. */
  #run(o: Run): { result: Promise<Choice[]>; abort(): void } {
    requireModel(this.engine);
    let ticket = 0;
    const result = new Promise<Choice[]>((resolve, reject) => {
      const filters = o.items.map(() => new StopFilter(o.stops));
      const texts = o.items.map(() => "");
      const entries: TokenLogprob[][] = o.items.map(() => []); // returned with the text
      const waiting: TokenLogprob[][] = o.items.map(() => []); // their text is held back by the stop filter
      const stopAt: (number | null)[] = o.items.map(() => null);
      const choices: Choice[] = [];
      let open = o.items.length;
      let started = false;
      const onAbort = () => this.engine.abort(ticket);
      o.signal.addEventListener("abort", onAbort, { once: true });
      const emit = (i: number, text: string) => {
        if (text === "") return;
        const lps = waiting[i]!.splice(0);
        if (o.onDelta) o.onDelta(i, text, lps);
        else (texts[i] += text), entries[i]!.push(...lps);
      };
      ticket = this.engine.submit(o.items, true, o.config, {
        accepted: () => {},
        started: () => void (!started && ((started = true), o.onStart?.())),
        text: (i, text, delivered, logprobs) => {
          const f = filters[i]!;
          if (f.stopped) return;
          if (logprobs) waiting[i]!.push(...logprobs);
          emit(i, f.push(text));
          if (!f.stopped) return;
          stopAt[i] = delivered;
          // every choice has met a stop: the rest would be thrown away
          if (filters.every((x) => x.stopped)) this.engine.abort(ticket, stopAt.map((d) => d ?? 0));
        },
        done: (i, reason, generated, _length, promptTokens) => {
          const f = filters[i]!;
          emit(i, f.flush());
          const choice: Choice = {
            index: i, text: texts[i]!, finish: f.stopped || reason === "eos" ? "stop" : "length", promptTokens,
            completionTokens: stopAt[i] ?? generated, logprobs: entries[i]!,
          };
          choices[i] = choice;
          o.onChoice?.(choice);
          if (--open > 0) return;
          o.signal.removeEventListener("abort", onAbort);
          resolve(choices);
        },
        error: (e) => {
          o.signal.removeEventListener("abort", onAbort);
          reject(inOpenAITerms(HttpError.from(e))); // the engine words its refusals for the seed API
        },
      });
    });
    return { result, abort: () => this.engine.abort(ticket) };
  }
}

/** token counts; a prompt is counted once however many (n) choices it has, as OpenAI counts it */
function usage(choices: Choice[], n: number) {
  const promptTokens = choices.filter((c) => c.index % n === 0).reduce((sum, c) => sum + c.promptTokens, 0);
  const completionTokens = choices.reduce((n, c) => n + c.completionTokens, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop == null) return [];
  return typeof stop === "string" ? [stop] : stop;
}
