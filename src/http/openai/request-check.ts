// A chat completions body as the conversation core's input, checked on the way: what each role
// needs, content parts a text-only model can read, tools and tool_choice that agree, and the
// request fields that would ask for something this server cannot do (a 400 naming the field and
// what is supported). Fields at their neutral values pass.
import type { Conversation, Message, Tool, ToolChoice } from "../../conversation/types.ts";
import { HttpError } from "../errors.ts";
import { wellFormed } from "../generate/service.ts";
import { ToolChecker } from "../tool-check.ts";
import type { ChatInput, ChatMessageInput } from "./model.ts";

const bad = (field: string, message: string) => new HttpError(400, "invalid_field", message, field);
const unsupported = (field: string, message: string) => new HttpError(400, "unsupported", message, field);

/** Request fields this server cannot honour, unless at their neutral value. */
export function refuseUnsupported(body: ChatInput): void {
  if (body.modalities && body.modalities.some((m) => m !== "text")) throw unsupported("modalities", 'only "text" output is supported: this server has a text-only model');
  if (body.audio != null) throw unsupported("audio", "audio output is not supported: this server has a text-only model");
  if (body.web_search_options != null) throw unsupported("web_search_options", "web search is not supported by this server");
  if (body.functions != null) throw unsupported("functions", "functions (deprecated) is not supported: send tools instead");
  if (body.function_call != null) throw unsupported("function_call", "function_call (deprecated) is not supported: send tool_choice instead");
  if (body.reasoning_effort != null) throw unsupported("reasoning_effort", "reasoning_effort is not supported: this model does not reason in hidden steps");
  if (body.verbosity != null && body.verbosity !== "medium") throw unsupported("verbosity", 'verbosity is supported at its default, "medium", only');
  if (body.prediction != null) {
    const p = body.prediction as { type?: unknown };
    if (typeof p !== "object" || p.type !== "content") throw bad("prediction", 'prediction must be {"type": "content", "content": …}');
  }
}

/** A message's text: a string, or its text (and refusal) parts; any other part is refused by name. */
function textOf(m: ChatMessageInput, i: number): string | null {
  const c = m.content;
  if (c == null) return null;
  if (typeof c === "string") {
    wellFormed(c, `messages[${i}].content`);
    return c;
  }
  let text = "";
  c.forEach((p, j) => {
    const field = `messages[${i}].content[${j}]`;
    if (p.type === "text" && typeof p.text === "string") text += p.text;
    else if (p.type === "refusal" && m.role === "assistant" && typeof p.refusal === "string") text += p.refusal;
    else if (p.type === "text") throw bad(`${field}.text`, `${field}.text must be a string`);
    else throw unsupported(field, `content parts of type "${String(p.type).slice(0, 40)}" are not supported: this server's model reads text only (parts of type "text")`);
  });
  wellFormed(text, `messages[${i}].content`);
  return text;
}

function message(m: ChatMessageInput, i: number): Message {
  const field = (f: string) => `messages[${i}].${f}`;
  const content = textOf(m, i);
  const name = m.name ?? undefined;
  if (m.audio != null) throw unsupported(field("audio"), "audio in messages is not supported: this server has a text-only model");
  if (m.function_call != null) throw unsupported(field("function_call"), "function_call (deprecated) is not supported: send tool_calls instead");
  if (m.role !== "assistant" && m.tool_calls != null) throw bad(field("tool_calls"), `tool_calls belong to assistant messages, not ${m.role}`);
  if (m.role !== "tool" && m.tool_call_id != null) throw bad(field("tool_call_id"), `tool_call_id belongs to tool messages, not ${m.role}`);
  switch (m.role) {
    case "assistant": {
      const toolCalls = (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
      if (content == null && toolCalls.length === 0 && m.refusal == null) throw bad(field("content"), "an assistant message needs content or tool_calls");
      return { role: "assistant", content: content ?? m.refusal ?? null, ...(toolCalls.length ? { toolCalls } : {}), ...(name ? { name } : {}) };
    }
    case "tool":
      if (!m.tool_call_id) throw bad(field("tool_call_id"), "a tool message needs tool_call_id: the id of the call it answers");
      return { role: "tool", content: content ?? "", toolCallId: m.tool_call_id, ...(name ? { name } : {}) };
    default:
      if (content == null) throw bad(field("content"), `a ${m.role} message needs content`);
      return { role: m.role, content, ...(name ? { name } : {}) };
  }
}

function tools(body: ChatInput, maxBytes: number): Tool[] {
  const checker = new ToolChecker(maxBytes);
  return (body.tools ?? []).map((t, i) => {
    const field = `tools[${i}]`;
    if (t.type !== "function" || !t.function) throw unsupported(`${field}.type`, `tools of type "${String(t.type).slice(0, 40)}" are not supported: only "function" tools (with a function object)`);
    const f = t.function;
    return checker.tool({ ...f, strict: f.strict === true }, { name: `${field}.function.name`, schema: `${field}.function.parameters` });
  });
}

/**
 * OpenAI's tool_choice as the core's: "none", "auto", "required" or one named tool (chat nests its
 * name in `function`, Responses does not: `nameOf` reads it, `shape` is the object's form in errors).
 */
export function toolChoiceOf(c: unknown, list: Tool[], nameOf: (o: Record<string, unknown>) => unknown, shape: string): ToolChoice {
  if (c == null) return list.length ? "auto" : "none";
  const rule = `tool_choice must be "none", "auto", "required" or ${shape}`;
  let choice: ToolChoice;
  if (typeof c === "string") {
    if (c !== "none" && c !== "auto" && c !== "required") throw bad("tool_choice", rule);
    choice = c;
  } else {
    const o = (c ?? {}) as Record<string, unknown>;
    const name = nameOf(o);
    if (o.type !== "function" || typeof name !== "string") throw bad("tool_choice", rule);
    if (!list.some((t) => t.name === name)) throw bad("tool_choice", `tool_choice names "${name.slice(0, 64)}", which is not one of the tools`);
    choice = { name };
  }
  if (choice !== "none" && choice !== "auto" && list.length === 0) throw bad("tool_choice", "tool_choice needs tools to choose from");
  return choice;
}

const chatToolChoice = (body: ChatInput, list: Tool[]) =>
  toolChoiceOf(body.tool_choice, list, (o) => (o.function as { name?: unknown } | undefined)?.name, '{"type": "function", "function": {"name": …}}');

/** The conversation a chat completions body asks to continue. */
export function conversationOf(body: ChatInput, limits: { maxGrammarBytes: number; maxToolCalls: number }): Conversation {
  refuseUnsupported(body);
  const list = tools(body, limits.maxGrammarBytes);
  const parallel = body.parallel_tool_calls ?? true;
  return {
    messages: body.messages.map(message),
    tools: list,
    toolChoice: chatToolChoice(body, list),
    parallelToolCalls: parallel,
    maxToolCalls: parallel ? limits.maxToolCalls : 1,
  };
}
