// What every tool-call format is: how a conversation with tools becomes the chat template's
// variables (render), what constrains the reply (constraint), and how the reply's text becomes
// content and calls (parser). One small module per model family; index.ts picks one by template.
import type { ConstraintSpec } from "../../constraints/messages.ts";
import type { TemplateInput } from "../chat-template.ts";
import type { ReplyParser } from "../reply-parser.ts";
import type { Conversation, Tool } from "../types.ts";

export interface ToolFormat {
  readonly name: string;
  render(conv: Conversation): TemplateInput;
  /** what the reply must match this turn; undefined: anything (no tools, or tool_choice none) */
  constraint(conv: Conversation): ConstraintSpec | undefined;
  /** control-token texts the reply shows so that the parser sees them ("[TOOL_CALLS]") */
  readonly specialText: string[];
  /** a parser for one reply; null: the reply is all text (no tool can be called) */
  parser(conv: Conversation): ReplyParser | null;
}

/** the reply may call tools */
export const calling = (conv: Conversation) => conv.tools.length > 0 && conv.toolChoice !== "none";

/** The template's variables for formats whose templates render tools: the messages, and the tools while they may be called. */
export function templateInput(conv: Conversation, id?: (id: string) => string): TemplateInput {
  return { messages: templateMessages(conv, id), ...(calling(conv) ? { tools: templateTools(conv.tools) } : {}) };
}

/** tools as OpenAI (and every template that renders tools) spells them */
export function templateTools(tools: Tool[]): Record<string, unknown>[] {
  return tools.map((t) => ({
    type: "function",
    function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters ?? { type: "object", properties: {} } },
  }));
}

/** JSON arguments as an object for templates that write them with tojson (a string that is not JSON stays a string) */
export function argumentsValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Messages as Hugging Face chat templates read them: developer is system, assistant tool calls
 * carry {id, type, function: {name, arguments}} with the arguments as an object, and a tool result
 * carries tool_call_id and the called function's name.
 */
export function templateMessages(conv: Conversation, id: (id: string) => string = (x) => x): Record<string, unknown>[] {
  const names = new Map<string, string>();
  return conv.messages.map((m) => {
    switch (m.role) {
      case "system":
      case "developer":
      case "user":
        return { role: m.role === "developer" ? "system" : m.role, content: m.content, ...(m.name ? { name: m.name } : {}) };
      case "assistant": {
        if (!m.toolCalls?.length) return { role: "assistant", content: m.content ?? "" };
        for (const c of m.toolCalls) names.set(c.id, c.name);
        const calls = m.toolCalls.map((c) => ({ id: id(c.id), type: "function", function: { name: c.name, arguments: argumentsValue(c.arguments) } }));
        return { role: "assistant", content: m.content ?? "", tool_calls: calls };
      }
      case "tool":
        return { role: "tool", content: m.content, tool_call_id: id(m.toolCallId), name: m.name ?? names.get(m.toolCallId) ?? "" };
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  });
}

/** the tools the reply may call: all, or the one tool_choice names */
export function callable(conv: Conversation): Tool[] {
  const choice = conv.toolChoice;
  return typeof choice === "object" ? conv.tools.filter((t) => t.name === choice.name) : conv.tools;
}

/** parameters as a schema (absent: any object) */
export const parametersOf = (t: Tool): Record<string, unknown> => t.parameters ?? { type: "object" };

/** xgrammar's structural tags have no empty string of their own: a grammar that matches only "" */
const NOTHING = { type: "grammar", grammar: 'root ::= ""' };

/** one to `max` calls (any of `tags`), `separator` between them */
export function callList(tags: Record<string, unknown>[], separator: string, max: number): Record<string, unknown> {
  const one = tags.length === 1 ? tags[0]! : { type: "or", elements: tags };
  let more: Record<string, unknown> = NOTHING;
  for (let k = 1; k < max; k++) more = { type: "or", elements: [{ type: "sequence", elements: [{ type: "const_string", value: separator }, one, more] }, NOTHING] };
  return max <= 1 ? one : { type: "sequence", elements: [one, more] };
}

/** a structural-tag constraint (xgrammar's) over the request's tools */
export function tagConstraint(format: Record<string, unknown>, markers: string[] = []): ConstraintSpec {
  return { type: "structural_tag", tag: JSON.stringify({ type: "structural_tag", format }), markers, field: "tools" };
}

/** one tag per callable tool: begin (up to the arguments) + the arguments' schema + end */
export function callTags(conv: Conversation, begin: (name: string) => string, end: string): Record<string, unknown>[] {
  return callable(conv).map((t) => ({ type: "tag", begin: begin(JSON.stringify(t.name)), content: { type: "json_schema", json_schema: parametersOf(t) }, end }));
}

/**
 * The usual choice: auto lets the model write text until a trigger opens a call; required or a
 * named tool must call from the first token (`first` wraps the calls when the format needs it).
 */
export function choiceConstraint(conv: Conversation, triggers: string[], tags: Record<string, unknown>[], separator: string, markers: string[] = []): ConstraintSpec | undefined {
  if (!calling(conv)) return undefined;
  const single = conv.maxToolCalls <= 1;
  const calls = callList(tags, separator, conv.maxToolCalls);
  if (conv.toolChoice !== "auto") return tagConstraint(calls, markers);
  // with response_format too: either the calls or an answer that matches its schema
  if (conv.answerSchema) return tagConstraint({ type: "or", elements: [calls, { type: "json_schema", json_schema: conv.answerSchema }] }, markers);
  return tagConstraint({ type: "triggered_tags", triggers, tags, stop_after_first: single }, markers);
}
