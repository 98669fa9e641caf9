// The Responses API's input items (and tools) as the conversation core's messages and tools:
// messages of any role, function calls and their outputs. Each refusal names the item it is about.
import type { Message, Tool, ToolCall, ToolChoice } from "../../conversation/types.ts";
import { HttpError } from "../errors.ts";
import { wellFormed } from "../generate/service.ts";
import { toolChoiceOf } from "../openai/request-check.ts";
import { ToolChecker } from "../tool-check.ts";
import { itemId } from "./events.ts";

const bad = (field: string, message: string) => new HttpError(400, "invalid_field", message, field);
const unsupported = (field: string, message: string) => new HttpError(400, "unsupported", message, field);

function text(v: unknown, field: string): string {
  if (typeof v === "string") {
    wellFormed(v, field);
    return v;
  }
  if (!Array.isArray(v)) throw bad(field, `${field} must be a string or a list of content parts`);
  let out = "";
  v.forEach((p: { type?: unknown; text?: unknown; refusal?: unknown }, j) => {
    const at = `${field}[${j}]`;
    if ((p?.type === "input_text" || p?.type === "output_text" || p?.type === "text") && typeof p.text === "string") out += p.text;
    else if (p?.type === "refusal" && typeof p.refusal === "string") out += p.refusal;
    else throw unsupported(at, `content parts of type ${JSON.stringify(String(p?.type)).slice(0, 40)} are not supported: this server's model reads text only (input_text, output_text)`);
  });
  wellFormed(out, field);
  return out;
}

const str = (v: unknown, field: string): string => {
  if (typeof v !== "string" || v === "") throw bad(field, `${field} must be a non-empty string`);
  return v;
};

/** Input items as messages (consecutive function calls join the assistant turn before them), and the items with ids. */
export function inputMessages(input: string | Record<string, unknown>[]): { messages: Message[]; items: Record<string, unknown>[] } {
  if (typeof input === "string") {
    wellFormed(input, "input");
    return { messages: [{ role: "user", content: input }], items: [{ id: itemId("msg"), type: "message", role: "user", content: [{ type: "input_text", text: input }], status: "completed" }] };
  }
  const messages: Message[] = [];
  const items: Record<string, unknown>[] = [];
  input.forEach((item, i) => {
    const at = `input[${i}]`;
    const type = item.type ?? "message";
    switch (type) {
      case "message": {
        const role = item.role;
        if (role !== "user" && role !== "system" && role !== "developer" && role !== "assistant") throw bad(`${at}.role`, `${at}.role must be one of user, system, developer, assistant`);
        const content = text(item.content, `${at}.content`);
        messages.push(role === "assistant" ? { role, content } : { role, content });
        items.push({ id: item.id ?? itemId("msg"), type: "message", role, content: typeof item.content === "string" ? [{ type: role === "assistant" ? "output_text" : "input_text", text: content }] : item.content, status: "completed" });
        return;
      }
      case "function_call": {
        const call: ToolCall = { id: str(item.call_id, `${at}.call_id`), name: str(item.name, `${at}.name`), arguments: typeof item.arguments === "string" ? item.arguments : JSON.stringify(item.arguments ?? {}) };
        const last = messages.at(-1);
        if (last?.role === "assistant") last.toolCalls = [...(last.toolCalls ?? []), call];
        else messages.push({ role: "assistant", content: null, toolCalls: [call] });
        items.push({ id: item.id ?? itemId("fc"), type: "function_call", call_id: call.id, name: call.name, arguments: call.arguments, status: "completed" });
        return;
      }
      case "function_call_output": {
        const callId = str(item.call_id, `${at}.call_id`);
        const output = typeof item.output === "string" ? item.output : text(item.output, `${at}.output`);
        messages.push({ role: "tool", content: output, toolCallId: callId });
        items.push({ id: item.id ?? itemId("fco"), type: "function_call_output", call_id: callId, output, status: "completed" });
        return;
      }
      case "reasoning":
        return; // a reasoning model's summary: this model does not reason in hidden steps
      case "item_reference":
        throw unsupported(`${at}.type`, "item_reference is not supported: continue a stored response with previous_response_id");
      default:
        throw unsupported(`${at}.type`, `input items of type ${JSON.stringify(String(type)).slice(0, 40)} are not supported: message, function_call and function_call_output are`);
    }
  });
  return { messages, items };
}

/** Function tools (flat, as the Responses API spells them); built-in tools are refused by name. */
export function responseTools(tools: Record<string, unknown>[] | null | undefined, maxBytes: number): Tool[] {
  const checker = new ToolChecker(maxBytes);
  return (tools ?? []).map((t, i) => {
    const at = `tools[${i}]`;
    if (t.type !== "function") throw unsupported(`${at}.type`, `tools of type ${JSON.stringify(String(t.type)).slice(0, 40)} (built-in tools such as web_search or file_search) are not supported: only "function" tools`);
    const name = str(t.name, `${at}.name`);
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) throw bad(`${at}.name`, `${at}.name must be 1-64 letters, digits, _ . : or -`);
    if (t.parameters != null && (typeof t.parameters !== "object" || Array.isArray(t.parameters))) throw bad(`${at}.parameters`, `${at}.parameters must be a JSON Schema object`);
    const description = typeof t.description === "string" ? t.description : undefined;
    // Responses tools are strict unless they say otherwise, as OpenAI's are
    return checker.tool({ name, description, parameters: t.parameters, strict: t.strict !== false }, { name: `${at}.name`, schema: `${at}.parameters` });
  });
}

export const responseToolChoice = (choice: unknown, tools: Tool[]): ToolChoice =>
  toolChoiceOf(choice, tools, (o) => o.name, '{"type": "function", "name": …}');
