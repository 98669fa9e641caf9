// /v1/chat/completions as a thin adapter over the conversation core: the body becomes a
// conversation (request-check.ts), the core runs the turn, and each choice's reply events become
// OpenAI's message or its streamed deltas.
import { endOf, startTurn } from "../../conversation/core.ts";
import type { Reply } from "../../conversation/turn.ts";
import type { ReplyEvent } from "../../conversation/types.ts";
import type { TokenLogprob } from "../../engine/messages.ts";
import { HttpError } from "../errors.ts";
import { openaiWords } from "./errors.ts";
import { chatLogprobs } from "./logprobs.ts";
import type { ChatInput } from "./model.ts";
import { conversationOf } from "./request-check.ts";
import { usage, type OpenAIService } from "./service.ts";

export async function chatTurn(service: OpenAIService, body: ChatInput, signal: AbortSignal): Promise<Response | object> {
  if (body.top_logprobs != null && !body.logprobs) throw new HttpError(400, "invalid_field", "top_logprobs needs logprobs: true", "top_logprobs");
  const core = service.core(openaiWords("chat"));
  const request = {
    conv: conversationOf(body, service.settings), sampling: body, signal,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined, logprobs: body.logprobs ? body.top_logprobs ?? 0 : null,
  };
  const lp = (entries: TokenLogprob[]) => (body.logprobs ? chatLogprobs(entries) : null);
  const meta = service.meta("chatcmpl");
  const n = body.n ?? 1;
  if (!body.stream) {
    const { choices, replies, logprobs } = await startTurn(core, request).result;
    return {
      ...meta, object: "chat.completion",
      choices: choices.map((c) => ({ index: c.index, message: messageOf(replies[c.index]!), logprobs: lp(logprobs[c.index]!), finish_reason: endOf(c, replies[c.index]!) })),
      usage: usage(choices, n),
    };
  }
  const chunk = (index: number, delta: object, finish: string | null, entries: TokenLogprob[] | null) =>
    ({ ...meta, object: "chat.completion.chunk", choices: [{ index, delta, logprobs: entries ? lp(entries) : null, finish_reason: finish }] });
  return service.sse(body, meta, "chat.completion.chunk", (send, begin) => {
    const running = startTurn(core, request, {
      onStart: () => {
        send(Array.from({ length: n }, (_, index) => chunk(index, { role: "assistant", content: "" }, null, null)));
        begin();
      },
      onEvents: (index, events, entries) => send(events.map((e, k) => chunk(index, deltaOf(e), null, k === 0 ? entries : null))),
      onEnd: (c, reply) => send([chunk(c.index, {}, endOf(c, reply), null)]),
    });
    return { abort: running.abort, result: running.result.then((r) => r.choices) };
  });
}

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
