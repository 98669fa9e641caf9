// /v1/chat/completions as a thin adapter over the conversation core: the body becomes a
// conversation (request-check.ts), the core plans the turn (prompt, tool-call constraint, reply
// parser), and each choice's reply events become OpenAI's message or its streamed deltas.
import type { ConstraintSpec } from "../../constraints/messages.ts";
import type { Choice } from "../../conversation/engine-run.ts";
import type { ReplyParser } from "../../conversation/reply-parser.ts";
import { planTurn, Reply, type TurnPlan } from "../../conversation/turn.ts";
import type { Conversation, ReplyEvent } from "../../conversation/types.ts";
import type { TokenLogprob } from "../../engine/messages.ts";
import { HttpError } from "../errors.ts";
import { chatLogprobs } from "./logprobs.ts";
import type { ChatInput } from "./model.ts";
import { conversationOf } from "./request-check.ts";
import { stopList, usage, type OpenAIService } from "./service.ts";

export async function chatTurn(service: OpenAIService, body: ChatInput, signal: AbortSignal): Promise<Response | object> {
  if (body.top_logprobs != null && !body.logprobs) throw new HttpError(400, "invalid_field", "top_logprobs needs logprobs: true", "top_logprobs");
  const conv = conversationOf(body, service.settings);
  const calling = conv.tools.length > 0 && conv.toolChoice !== "none";
  // response_format beside tools: an answer that calls no tool must match it
  const asked = service.generate.constraint(body);
  if (calling && asked) conv.answerSchema = answerSchema(asked);
  let plan: TurnPlan;
  try {
    plan = planTurn(service.template(), conv);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, "template_error", `the chat template refused these messages: ${(err as Error).message}`, "messages");
  }
  // with a request_id the session follows the conversation: it keeps what it shares with it
  const items = service.items(body, [{ prompt: plan.prompt, pieces: plan.pieces, sync: true }]);
  const config = service.config(calling ? { ...body, response_format: null, json_schema: null, grammar: null } : body,
    body.max_completion_tokens ?? body.max_tokens ?? undefined, body.logprobs ? body.top_logprobs ?? 0 : null);
  if (plan.constraint) config.constraint = plan.constraint;
  if (plan.specialText.length) config.special_text = plan.specialText;
  const lp = (entries: TokenLogprob[]) => (body.logprobs ? chatLogprobs(entries) : null);
  const meta = service.meta("chatcmpl");
  const stops = stopList(body.stop);
  const parsers = items.map(() => plan.parser());
  const run = { items, config, stops, signal };
  if (body.stream) {
    const chunk = (index: number, delta: object, finish: string | null, entries: TokenLogprob[] | null) =>
      ({ ...meta, object: "chat.completion.chunk", choices: [{ index, delta, logprobs: entries ? lp(entries) : null, finish_reason: finish }] });
    const called = items.map(() => false);
    const deltas = (index: number, events: ReplyEvent[], entries: TokenLogprob[]) =>
      events.map((e, k) => {
        if (e.type !== "text") called[index] = true;
        return chunk(index, deltaOf(e), null, k === 0 ? entries : null);
      });
    return service.stream(run, body, meta, "chat", {
      object: "chat.completion.chunk",
      first: (n) => Array.from({ length: n }, (_, index) => chunk(index, { role: "assistant", content: "" }, null, null)),
      delta: (index, text, entries) => deltas(index, parse(parsers[index]!, text), entries),
      end: (c) => [...deltas(c.index, parsers[c.index]?.end() ?? [], []), chunk(c.index, {}, finishOf(c, called[c.index]!), null)],
    });
  }
  const replies = items.map(() => new Reply());
  const entries: TokenLogprob[][] = items.map(() => []);
  const choices = await service.run({
    ...run,
    onDelta: (i, text, logprobs) => (replies[i]!.add(parse(parsers[i]!, text)), entries[i]!.push(...logprobs)),
    onChoice: (c) => replies[c.index]!.add(parsers[c.index]?.end() ?? []),
  }, "chat").result;
  return {
    ...meta, object: "chat.completion",
    choices: choices.map((c) => ({ index: c.index, message: messageOf(replies[c.index]!), logprobs: lp(entries[c.index]!), finish_reason: finishOf(c, replies[c.index]!.calls.length > 0) })),
    usage: usage(choices, body.n ?? 1),
  };
}

/** without tools the text is all content */
const parse = (parser: ReplyParser | null, text: string): ReplyEvent[] => (parser ? parser.push(text) : [{ type: "text", text }]);

/** a reply that called tools and ended by itself ends with "tool_calls" */
const finishOf = (c: Choice, called: boolean) => (called && c.finish === "stop" ? "tool_calls" : c.finish);

function messageOf(reply: Reply) {
  if (reply.calls.length === 0) return { role: "assistant", content: reply.content, refusal: null };
  const toolCalls = reply.calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
  return { role: "assistant", content: reply.content.trim() === "" ? null : reply.content, refusal: null, tool_calls: toolCalls };
}

function deltaOf(e: ReplyEvent): object {
  switch (e.type) {
    case "text": return { content: e.text };
    case "call": return { tool_calls: [{ index: e.index, id: e.id, type: "function", function: { name: e.name, arguments: "" } }] };
    case "arguments": return { tool_calls: [{ index: e.index, function: { arguments: e.fragment } }] };
    default: {
      const never: never = e;
      throw new Error(`unknown event ${JSON.stringify(never)}`);
    }
  }
}

function answerSchema(spec: ConstraintSpec): Record<string, unknown> {
  switch (spec.type) {
    case "json_schema": return JSON.parse(spec.schema) as Record<string, unknown>;
    case "json_object": return { type: "object" };
    default: throw new HttpError(400, "conflicting_constraints", `${spec.field ?? "grammar"} cannot be combined with tools: use response_format, or tool_choice "none"`, spec.field);
  }
}

export type { Conversation };
