// POST /v1/responses and the stored responses, as a thin adapter over the conversation core. A
// stored response is a session: the next turn, by previous_response_id, continues that session's
// KV cells (restored after eviction, a restart or on another replica, as any session is) and decodes
// only what it adds. Two turns continuing one response at once branch: the second gets a session of
// its own. store: false runs as a one-off sequence and leaves nothing behind.
import { startTurn, type TurnRequest, type TurnResult } from "../../conversation/core.ts";
import type { Reply } from "../../conversation/turn.ts";
import type { Conversation, Message } from "../../conversation/types.ts";
import { HttpError } from "../errors.ts";
import { openaiWords } from "../openai/errors.ts";
import type { OpenAIService } from "../openai/service.ts";
import { namedEvent, sseResponse } from "../sse.ts";
import { ResponseEvents } from "./events.ts";
import { inputMessages, responseTools, responseToolChoice } from "./input.ts";
import type { ResponseInput } from "./model.ts";
import type { ResponseRecord, ResponseStore } from "./store.ts";
import { randomHex } from "../../ids.ts";

const unsupported = (field: string, message: string) => new HttpError(400, "unsupported", message, field);

/** refusals in the Responses API's own field names (text.format is chat's response_format) */
function words(err: HttpError): HttpError {
  const e = openaiWords("chat")(err);
  const rename = (s: string) =>
    s.replaceAll("max_tokens", "max_output_tokens").replace(/^the messages have/, "the input has")
      .replaceAll("response_format.json_schema.schema", "text.format.schema").replaceAll("response_format", "text.format");
  const field = e.field === "messages" ? "input" : e.field && rename(e.field);
  return new HttpError(e.status, e.code, rename(e.message), field, e.headers);
}

export class ResponsesService {
  constructor(private readonly openai: OpenAIService, private readonly store: ResponseStore) {}

  async create(body: ResponseInput, signal: AbortSignal): Promise<Response> {
    refuseUnsupported(body);
    const settings = this.openai.settings;
    const tools = responseTools(body.tools, settings.maxGrammarBytes);
    const { messages: added, items } = inputMessages(body.input);
    let history: Message[] = [];
    let session: string | undefined;
    if (body.previous_response_id) {
      const prev = await this.store.get(body.previous_response_id);
      if (!prev) throw new HttpError(400, "previous_response_not_found", `Previous response with id '${body.previous_response_id}' not found.`, "previous_response_id");
      history = prev.conversation;
      session = prev.session;
    }
    const id = responseId(session);
    const stored = body.store ?? true;
    const parallel = body.parallel_tool_calls ?? true;
    const conv: Conversation = {
      // instructions are this request's only: a later turn sends its own
      messages: [...(body.instructions ? [{ role: "system" as const, content: body.instructions }] : []), ...history, ...added],
      tools, toolChoice: responseToolChoice(body.tool_choice, tools), parallelToolCalls: parallel,
      maxToolCalls: parallel ? Math.min(settings.maxToolCalls, body.max_tool_calls ?? Infinity) : 1,
    };
    const format = body.text?.format;
    const request: TurnRequest = {
      conv, signal, maxTokens: body.max_output_tokens ?? undefined, logprobs: null,
      sampling: {
        temperature: body.temperature, top_p: body.top_p, seed: body.seed, top_k: body.top_k, stop: body.stop,
        response_format: format?.type === "json_schema" ? { type: "json_schema", json_schema: { name: format.name, schema: format.schema, strict: format.strict } } : format,
      },
    };
    const turn: Turn = { id, body, items, conversation: [...history, ...added], createdAt: Math.floor(Date.now() / 1000), stored };
    // a stored turn continues its conversation's session (or starts one named after itself)
    const first = stored ? session ?? id : undefined;
    try {
      return await this.#attempt(turn, request, first);
    } catch (err) {
      // that session is generating another turn right now: this one branches into its own
      if (err instanceof HttpError && err.status === 409 && first && first !== id) return this.#attempt(turn, request, id);
      throw err;
    }
  }

  #attempt(turn: Turn, request: TurnRequest, session: string | undefined): Promise<Response> {
    const core = this.openai.core(words);
    const req = { ...request, session: session ? { requestId: session } : undefined };
    let source = "new";
    const onAccepted = (sessions: string[]) => void (source = sessions[0] ?? "new");
    const finish = async (result: TurnResult, events: ResponseEvents) => {
      const c = result.choices[0]!;
      const reply = result.replies[0]!;
      close(events, reply);
      const response = this.#object(turn, events.items, c.finish === "length" ? "incomplete" : "completed", c);
      if (turn.stored && session) {
        const conversation = [...turn.conversation, assistantOf(reply)];
        await this.store.put({ id: turn.id, response, inputItems: turn.items, conversation, session } satisfies ResponseRecord);
      }
      return response;
    };
    if (!turn.body.stream) {
      const items = new ResponseEvents(null); // the same items a stream shows, without its events
      const running = startTurn(core, req, { onAccepted, onEvents: (_i, e) => items.events(e) });
      return running.result.then(async (r) => Response.json(await finish(r, items), { headers: { "x-session": source } }));
    }
    let events: ResponseEvents;
    let final: Record<string, unknown> | null = null;
    return sseResponse<TurnResult>(this.openai.settings.stallTimeoutS * 1000, {
      start: ({ push, begin }) => {
        events = new ResponseEvents((type, data) => push(namedEvent(type, data)));
        const running = startTurn(core, req, {
          onAccepted,
          onStart: () => {
            const response = this.#object(turn, [], "in_progress", null);
            events.send("response.created", { response });
            events.send("response.in_progress", { response });
            begin({ "x-session": source });
          },
          onEvents: (_i, e) => events.events(e),
        });
        // the record is written before the last event: a client that continues at once finds it
        return { abort: running.abort, result: running.result.then(async (r) => ((final = await finish(r, events)), r)) };
      },
      end: () => events.send(final!.status === "incomplete" ? "response.incomplete" : "response.completed", { response: final! }),
      fail: (err) => events.send("error", { code: err.code, message: err.message, param: err.field ?? null }),
    });
  }

  async get(id: string): Promise<Record<string, unknown>> {
    return (await this.#record(id)).response;
  }

  async delete(id: string): Promise<object> {
    if (!(await this.store.delete(id))) throw notFound(id);
    return { id, object: "response", deleted: true };
  }

  async inputItems(id: string, q: { order?: string; limit?: string; after?: string }): Promise<object> {
    const rec = await this.#record(id);
    let data = q.order === "asc" ? rec.inputItems : [...rec.inputItems].reverse(); // newest first by default, as OpenAI lists
    if (q.after) data = data.slice(data.findIndex((i) => i.id === q.after) + 1);
    const limit = Math.max(1, Math.min(100, Number(q.limit ?? 20) | 0 || 20));
    const page = data.slice(0, limit);
    return { object: "list", data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: data.length > limit };
  }

  async #record(id: string): Promise<ResponseRecord> {
    const rec = await this.store.get(id);
    if (!rec) throw notFound(id);
    return rec;
  }

  #object(turn: Turn, output: Record<string, unknown>[], status: string, c: { promptTokens: number; cachedTokens: number; completionTokens: number } | null) {
    const b = turn.body;
    const text = output.flatMap((o) => (o.type === "message" ? (o.content as { text: string }[]).map((p) => p.text) : [])).join("");
    return {
      id: turn.id, object: "response", created_at: turn.createdAt, status, background: false, error: null,
      incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
      instructions: b.instructions ?? null, max_output_tokens: b.max_output_tokens ?? null, max_tool_calls: b.max_tool_calls ?? null,
      model: this.openai.modelId, output, output_text: text, parallel_tool_calls: b.parallel_tool_calls ?? true,
      previous_response_id: b.previous_response_id ?? null, reasoning: { effort: null, summary: null }, service_tier: "default",
      store: turn.stored, temperature: b.temperature ?? 1, text: { format: b.text?.format ?? { type: "text" }, verbosity: "medium" },
      tool_choice: b.tool_choice ?? "auto", tools: b.tools ?? [], top_p: b.top_p ?? 1, truncation: b.truncation ?? "disabled",
      usage: c && {
        input_tokens: c.promptTokens, input_tokens_details: { cached_tokens: c.cachedTokens },
        output_tokens: c.completionTokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: c.promptTokens + c.completionTokens,
      },
      user: b.user ?? null, metadata: b.metadata ?? {},
    };
  }
}

interface Turn {
  id: string;
  body: ResponseInput;
  items: Record<string, unknown>[];
  /** the conversation before this turn's output (instructions excluded) */
  conversation: Message[];
  createdAt: number;
  stored: boolean;
}

/** the last item closed (an empty reply still has its message item) */
function close(events: ResponseEvents, reply: Reply): void {
  if (reply.content === "" && reply.calls.length === 0) events.ensureItem();
  events.close();
}

const assistantOf = (reply: Reply): Message => ({ role: "assistant", content: reply.content === "" && reply.calls.length ? null : reply.content, ...(reply.calls.length ? { toolCalls: reply.calls } : {}) });

/**
 * resp_ + 32 hex naming the conversation + 16 of its own: every turn of a conversation shares the
 * first part, which HAProxy hashes to route a turn to the replica holding its session.
 */
function responseId(session: string | undefined): string {
  const own = randomHex();
  const conversation = /^resp_([0-9a-f]{32})/.exec(session ?? "")?.[1] ?? own;
  return `resp_${conversation}${own.slice(0, 16)}`;
}

const notFound = (id: string) => new HttpError(404, "not_found", `No response found with id '${id.slice(0, 100)}'.`, "response_id");

function refuseUnsupported(body: ResponseInput): void {
  if (body.background) throw unsupported("background", "background responses are not supported: send the request and wait for it (or stream it)");
  if (body.conversation != null) throw unsupported("conversation", "the Conversations API is not supported: continue with previous_response_id");
  if (body.prompt != null) throw unsupported("prompt", "stored prompt templates are not supported: send input and instructions");
  const reasoning = body.reasoning as { effort?: unknown } | null | undefined;
  if (reasoning && reasoning.effort != null) throw unsupported("reasoning", "reasoning is not supported: this model does not reason in hidden steps");
  if (body.top_logprobs) throw unsupported("top_logprobs", "top_logprobs is not supported on /v1/responses: use /v1/chat/completions");
  if (body.text?.verbosity != null && body.text.verbosity !== "medium") throw unsupported("text.verbosity", 'text.verbosity is supported at its default, "medium", only');
}
