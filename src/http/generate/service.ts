// Generation use-cases over the engine client. No Elysia here: plain Request/Response types.
import type { Settings } from "../../config.ts";
import type { EngineClient } from "../../engine/client.ts";
import type { ErrorInfo, GenerationConfig, PromptSpec, SessionSource } from "../../engine/messages.ts";
import type { ConstraintSpec } from "../../constraints/messages.ts";
import { constraintOf, type ConstraintFields } from "../constraint.ts";
import { HttpError, requireModel } from "../errors.ts";
import { TokenTextStream } from "./text-stream.ts";
import type { BatchItemOutput, GenerateBatchInput, GenerateOneInput, GenerationConfigInput } from "./model.ts";

const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" };

export class GenerateService {
  constructor(
    private readonly engine: EngineClient,
    private readonly settings: Settings,
  ) {}

  /** generation_config's defaults (from .env), for clients such as the playground */
  defaults(): Settings["defaults"] {
    return this.settings.defaults;
  }

  /** Defaults from .env, overridden by the request; checks what the schema cannot. */
  config(input: GenerationConfigInput | undefined): GenerationConfig {
    const { json_schema, grammar, ...sampling } = input ?? {};
    const c: GenerationConfig = { ...this.settings.defaults, ...sampling };
    const constraint = this.constraint({ json_schema, grammar }, "generation_config.");
    if (constraint) c.constraint = constraint;
    if (input?.max_new_tokens === undefined) c.fitMaxNewTokens = true;
    else if (c.max_new_tokens > this.settings.ctxSize) {
      throw new HttpError(422, "context_exceeded", `max_new_tokens ${c.max_new_tokens} > CTX_SIZE ${this.settings.ctxSize}`, "generation_config.max_new_tokens");
    }
    if (c.num_beams > this.settings.maxBeams) {
      throw new HttpError(422, "too_many_beams", `num_beams ${c.num_beams} > MAX_BEAMS ${this.settings.maxBeams}`, "generation_config.num_beams");
    }
    return c;
  }

  /** The request's one constraint (JSON Schema, any JSON object, grammar), checked; undefined: none. */
  constraint(fields: ConstraintFields, prefix = ""): ConstraintSpec | undefined {
    return constraintOf(fields, this.settings.maxGrammarBytes, prefix);
  }

  async generateOne(body: GenerateOneInput, signal: AbortSignal): Promise<Response> {
    const config = this.config(body.generation_config);
    wellFormed(body.request_id, "request_id");
    wellFormed(body.prompt, "prompt");
    const item = { requestId: body.request_id, prompt: body.prompt };
    requireModel(this.engine);
    const onlyNew = body.only_new_tokens ?? true;
    if (body.stream_response ?? true) return this.#stream(item, onlyNew, config, signal);
    const { texts, prefixes, sessions } = await this.#collect([item], onlyNew, config, signal);
    return new Response(onlyNew ? texts[0] : (prefixes[0] ?? "") + texts[0], { headers: { ...TEXT_HEADERS, "x-session": sessions[0] ?? "new" } });
  }

  async generateBatch(body: GenerateBatchInput, signal: AbortSignal): Promise<BatchItemOutput[]> {
    const config = this.config(body.generation_config);
    if (body.prompts.length > this.settings.maxBatchPrompts) {
      throw new HttpError(422, "batch_too_large", `${body.prompts.length} prompts > MAX_BATCH_PROMPTS ${this.settings.maxBatchPrompts}`, "prompts");
    }
    const seen = new Map<string, number>();
    body.prompts.forEach((p, i) => {
      wellFormed(p.request_id, `prompts[${i}].request_id`);
      wellFormed(p.prompt, `prompts[${i}].prompt`);
      const j = seen.get(p.request_id);
      if (j !== undefined) throw new HttpError(422, "duplicate_request_id", `request_id "${p.request_id}" appears at prompts[${j}] and prompts[${i}]`, `prompts[${i}].request_id`);
      seen.set(p.request_id, i);
    });
    const items = body.prompts.map((p) => ({ requestId: p.request_id, prompt: p.prompt }));
    requireModel(this.engine);
    const onlyNew = body.only_new_tokens ?? true;
    // only_new_tokens false: "prompt" is everything before this call as the model saw it
    // (special tokens rendered, earlier generations of a continued request_id included).
    const { texts, prefixes, sessions } = await this.#collect(items, onlyNew, config, signal);
    return items.map((item, i) =>
      onlyNew
        ? { request_id: item.requestId, response: texts[i]!, session: sessions[i]! }
        : { request_id: item.requestId, prompt: prefixes[i] ?? "", response: texts[i]!, session: sessions[i]! },
    );
  }

  /**
   * Streams one item's text as it is sampled; resolves once the engine accepted or refused it.
   * A client that goes away stops the generation within a step, and the session keeps exactly
   * the tokens whose text was handed to the server for it (a continuation then has no gap).
   */
  #stream(item: PromptSpec, onlyNew: boolean, config: GenerationConfig, signal: AbortSignal): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      let finished: { generated: number; length: number } | null = null;
      // the session's leases (replicas) wait until what the client received is known: let go once
      let held = true;
      const letGo = () => held && ((held = false), this.engine.letGo(ticket));
      const stop = (delivered: number) => {
        if (!finished) return this.engine.abort(ticket, [delivered]), letGo();
        // the generation was over, but not all of its text reached the client
        if (delivered < finished.generated && held) {
          held = false;
          this.engine.cut(item.requestId, finished.length - finished.generated + delivered, finished.length, ticket);
        } else letGo();
      };
      const out = new TokenTextStream(stop, this.settings.stallTimeoutS * 1000, letGo);
      const onAbort = () => this.engine.abort(ticket, [out.delivered]);
      signal.addEventListener("abort", onAbort, { once: true }); // before submit: a refusal comes back synchronously
      let session = "new";
      let responded = false;
      const respond = () => {
        if (responded) return;
        responded = true;
        resolve(new Response(out.body, { headers: { ...TEXT_HEADERS, "x-session": session } }));
      };
      const ticket = this.engine.submit([item], onlyNew, config, {
        accepted: (prefixes, sessions) => {
          if (!onlyNew && prefixes[0]) out.push(prefixes[0], 0);
          session = sessions[0] ?? "new";
        },
        // the response starts once generation does: a request that times out in the queue gets a 503
        started: (_i, corrected) => {
          if (corrected) session = corrected;
          out.begin();
          respond();
        },
        text: (_i, text, delivered) => out.push(text, delivered),
        done: (_i, _reason, generated, length) => {
          signal.removeEventListener("abort", onAbort);
          finished = { generated, length };
          out.end();
          respond(); // ended before it got a slot (withdrawn): the promise must still settle
        },
        error: (e: ErrorInfo) => {
          signal.removeEventListener("abort", onAbort);
          reject(HttpError.from(e)); // no effect once accepted: the stream then just ends
          out.fail(new Error(e.message));
          letGo();
        },
      }, true);
    });
  }

  /**
   * Collects the new text of every item. A client that disconnects received nothing: the engine
   * stops, and the sessions end where they were before this request.
   */
  #collect(items: PromptSpec[], onlyNew: boolean, config: GenerationConfig, signal: AbortSignal): Promise<{ texts: string[]; prefixes: string[]; sessions: SessionSource[] }> {
    return new Promise((resolve, reject) => {
      const parts: string[][] = items.map(() => []);
      let prefixes: string[] = [];
      let sessions: SessionSource[] = [];
      let open = items.length;
      const onAbort = () => this.engine.abort(ticket, items.map(() => 0));
      signal.addEventListener("abort", onAbort, { once: true }); // before submit: a refusal comes back synchronously
      const ticket = this.engine.submit(items, onlyNew, config, {
        accepted: (p, s) => void ((prefixes = p), (sessions = s)),
        started: (i, corrected) => void (corrected && (sessions[i] = corrected)),
        text: (i, text) => void parts[i]!.push(text),
        done: () => {
          if (--open > 0) return;
          signal.removeEventListener("abort", onAbort);
          resolve({ texts: parts.map((p) => p.join("")), prefixes, sessions });
        },
        error: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(HttpError.from(e));
        },
      });
    });
  }
}

/**
 * Text must be well-formed Unicode: a lone surrogate ("\ud800") has no UTF-8 form, and an id holding
 * one could never be reached again. (422; on /v1 the error shape makes it OpenAI's 400.)
 */
export function wellFormed(value: string, field: string): void {
  if (!value.isWellFormed()) throw new HttpError(422, "invalid_unicode", `${field} is not well-formed Unicode (it holds a lone surrogate)`, field);
}
