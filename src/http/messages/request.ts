// A Messages API body as the conversation core's input, checked on the way: system text, user text
// and tool results, assistant text and tool_use blocks, tools and tool_choice that agree, and what a
// text-only server cannot honour (image and document blocks, server tools, extended thinking,
// containers, a prefilled answer) refused with a 400 naming the field.
import type { Sampling } from "../../conversation/core.ts";
import type { Conversation, Message, Tool, ToolChoice } from "../../conversation/types.ts";
import { ToolChecker } from "../tool-check.ts";
import { HttpError } from "../errors.ts";
import { wellFormed } from "../generate/service.ts";
import { UNSUPPORTED_BLOCKS, type CommonInput, type ContentBlockInput, type MessagesInput, type UnsupportedBlock } from "./model.ts";

const bad = (field: string, message: string) => new HttpError(400, "invalid_field", message, field);
const unsupported = (field: string, message: string) => new HttpError(400, "unsupported", message, field);

/** why a block type cannot be read here */
function refuseBlock(type: UnsupportedBlock, field: string): never {
  const why = type === "image" || type === "document" || type === "search_result" || type === "container_upload"
    ? "this server's model reads text only"
    : "they belong to Anthropic's server tools, which this server does not have";
  throw unsupported(`${field}.type`, `content blocks of type "${type}" are not supported: ${why} (blocks of type "text", "tool_use", "tool_result")`);
}

/** Request fields this server cannot honour, unless at their neutral value. */
function refuseUnsupported(body: CommonInput): void {
  const thinking = body.thinking?.type;
  if (thinking === "enabled" || thinking === "between_tools") throw unsupported("thinking", `thinking of type "${thinking}" is not supported: this model does not think in hidden steps (send "disabled" or "adaptive", or leave it out)`);
  if (body.speed === "fast") throw unsupported("speed", 'speed "fast" is not supported: this server has one speed, "standard"');
  const effort = body.output_config?.effort;
  if (effort != null && effort !== "high") throw unsupported("output_config.effort", 'output_config.effort is supported at its default, "high", only: this model does not reason in hidden steps');
  if ("container" in body && body.container != null) throw unsupported("container", "containers are not supported: this server has no code execution");
  if ("diagnostics" in body && body.diagnostics != null) throw unsupported("diagnostics", "diagnostics are not supported by this server (send null or leave it out)");
}

/** text blocks (or a string) as one text; `field` names where they are */
function textOf(content: string | { type: string; text?: string }[], field: string): string {
  if (typeof content === "string") {
    wellFormed(content, field);
    return content;
  }
  const parts = content.map((b, j) => {
    if (b.type !== "text") {
      if ((UNSUPPORTED_BLOCKS as readonly string[]).includes(b.type)) refuseBlock(b.type as UnsupportedBlock, `${field}[${j}]`);
      throw bad(`${field}[${j}].type`, `${field}[${j}] must be a text block here, not "${b.type}"`);
    }
    wellFormed(b.text!, `${field}[${j}].text`);
    return b.text!;
  });
  return parts.join("\n");
}

/** one Anthropic message as the core's messages: tool results become tool messages, in their order */
function messagesOf(m: CommonInput["messages"][number], i: number, calls: Set<string>): Message[] {
  const field = `messages[${i}].content`;
  if (m.role === "system") return [{ role: "system", content: textOf(m.content as string | { type: string }[], field) }];
  if (typeof m.content === "string") {
    wellFormed(m.content, field);
    if (m.content === "" && m.role === "user") throw bad(field, `${field} must not be empty`);
    return [m.role === "user" ? { role: "user", content: m.content } : { role: "assistant", content: m.content }];
  }
  if (m.content.length === 0) throw bad(field, `${field} must not be empty`);
  const out: Message[] = [];
  let text: string[] = [];
  const toolCalls: { id: string; name: string; arguments: string }[] = [];
  const flush = () => {
    if (text.length) out.push({ role: "user", content: text.join("\n") });
    text = [];
  };
  m.content.forEach((b: ContentBlockInput, j) => {
    const at = `${field}[${j}]`;
    switch (b.type) {
      case "text":
        wellFormed(b.text, `${at}.text`);
        text.push(b.text);
        return;
      case "tool_use":
        if (m.role !== "assistant") throw bad(`${at}.type`, `tool_use blocks belong to assistant messages, not ${m.role}`);
        if (b.caller && b.caller.type !== "direct") throw unsupported(`${at}.caller`, `calls by "${b.caller.type.slice(0, 64)}" are not supported: only direct calls`);
        calls.add(b.id);
        toolCalls.push({ id: b.id, name: b.name, arguments: JSON.stringify(b.input) });
        return;
      case "tool_result": {
        if (m.role !== "user") throw bad(`${at}.type`, `tool_result blocks belong to user messages, not ${m.role}`);
        if (!calls.has(b.tool_use_id)) throw bad(`${at}.tool_use_id`, `${at}.tool_use_id "${b.tool_use_id.slice(0, 64)}" answers no tool_use block of an earlier assistant message`);
        flush();
        const content = b.content === undefined ? "" : textOf(b.content, `${at}.content`);
        out.push({ role: "tool", toolCallId: b.tool_use_id, content: b.is_error ? `Error: ${content}` : content });
        return;
      }
      case "thinking":
      case "redacted_thinking":
        return;
      default:
        refuseBlock(b.type, at);
    }
  });
  if (m.role === "user") flush();
  else if (text.length || toolCalls.length) out.push({ role: "assistant", content: text.length ? text.join("\n") : null, ...(toolCalls.length ? { toolCalls } : {}) });
  return out;
}

/** consecutive turns of one role are one turn, as Anthropic combines them */
function merged(messages: Message[]): Message[] {
  const out: Message[] = [];
  for (const m of messages) {
    const last = out.at(-1);
    if (last && last.role === m.role && (m.role === "user" || m.role === "system")) {
      last.content = `${last.content}\n${m.content}`;
    } else if (last?.role === "assistant" && m.role === "assistant" && !last.toolCalls) {
      const content = [last.content, m.content].filter((c) => c != null).join("\n");
      out[out.length - 1] = { role: "assistant", content: content || null, ...(m.toolCalls ? { toolCalls: m.toolCalls } : {}) };
    } else out.push({ ...m });
  }
  return out;
}

const TOOL_KEYS = new Set(["name", "type", "description", "input_schema", "strict", "cache_control", "eager_input_streaming", "input_examples", "defer_loading", "allowed_callers"]);

function tools(body: CommonInput, maxBytes: number): Tool[] {
  const checker = new ToolChecker(maxBytes);
  return (body.tools ?? []).map((t, i) => {
    const field = `tools[${i}]`;
    if (t.type != null && t.type !== "custom") throw unsupported(`${field}.type`, `tools of type "${t.type.slice(0, 64)}" are not supported: this server has no server tools, only custom tools (name, description, input_schema)`);
    const extra = Object.keys(t).find((k) => !TOOL_KEYS.has(k));
    if (extra) throw bad(`${field}.${extra}`, `unknown field ${field}.${extra}`);
    if (t.input_schema === undefined) throw bad(`${field}.input_schema`, `${field}.input_schema is required`);
    if (t.defer_loading) throw unsupported(`${field}.defer_loading`, "defer_loading is not supported: this server has no tool search");
    const caller = t.allowed_callers?.find((c) => c !== "direct");
    if (caller) throw unsupported(`${field}.allowed_callers`, `callers other than "direct" are not supported ("${caller.slice(0, 64)}")`);
    return checker.tool({ name: t.name, description: t.description, parameters: t.input_schema, strict: t.strict === true }, { name: `${field}.name`, schema: `${field}.input_schema` });
  });
}

function toolChoice(body: CommonInput, list: Tool[]): { choice: ToolChoice; parallel: boolean } {
  const c = body.tool_choice;
  if (!c) return { choice: list.length ? "auto" : "none", parallel: true };
  const parallel = c.type === "none" ? true : !c.disable_parallel_tool_use;
  switch (c.type) {
    case "none":
    case "auto":
      return { choice: c.type, parallel };
    case "any":
      if (list.length === 0) throw bad("tool_choice", 'tool_choice "any" needs tools to choose from');
      return { choice: "required", parallel };
    case "tool":
      if (!list.some((t) => t.name === c.name)) throw bad("tool_choice.name", `tool_choice names "${c.name.slice(0, 64)}", which is not one of the tools`);
      return { choice: { name: c.name }, parallel };
    default: {
      const never: never = c;
      throw new Error(`unknown tool_choice ${JSON.stringify(never)}`);
    }
  }
}

/** The conversation a Messages body asks to continue. */
export function conversationOf(body: CommonInput, limits: { maxGrammarBytes: number; maxToolCalls: number }): Conversation {
  refuseUnsupported(body);
  const list = tools(body, limits.maxGrammarBytes);
  const { choice, parallel } = toolChoice(body, list);
  const calls = new Set<string>();
  const system: Message[] = body.system === undefined ? [] : [{ role: "system", content: textOf(body.system, "system") }];
  const messages = merged([...system, ...body.messages.flatMap((m, i) => messagesOf(m, i, calls))]);
  if (messages.at(-1)?.role === "assistant") {
    const i = body.messages.length - 1;
    throw unsupported(`messages[${i}]`, "a final assistant message (prefilling the answer) is not supported: end with a user message");
  }
  if (!messages.some((m) => m.role !== "system")) throw bad("messages", "messages needs a user message");
  return { messages, tools: list, toolChoice: choice, parallelToolCalls: parallel, maxToolCalls: parallel ? limits.maxToolCalls : 1 };
}

/** The sampling fields, as the core spells them (stop strings, structured output). */
export function samplingOf(body: MessagesInput): Sampling {
  (body.stop_sequences ?? []).forEach((s, i) => {
    wellFormed(s, `stop_sequences[${i}]`);
    if (s.trim() === "") throw bad(`stop_sequences[${i}]`, `stop_sequences[${i}] must hold something other than whitespace`);
  });
  if (body.output_config?.format && body.output_format) throw bad("output_format", "output_format and output_config.format cannot be combined: give one (output_format is the deprecated spelling)");
  const schema = body.output_config?.format?.schema ?? body.output_format?.schema;
  return {
    temperature: body.temperature, top_p: body.top_p, ...(body.top_k != null ? { top_k: body.top_k } : {}),
    stop: body.stop_sequences ?? null, ...(schema ? { json_schema: schema } : {}),
  };
}
