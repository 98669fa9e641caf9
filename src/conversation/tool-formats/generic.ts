// For templates that know no tools (SmolLM2's, ChatML): the tools are described in a system block,
// and the reply is one JSON object, constrained from its first token: {"tool_calls": [{"name",
// "arguments"}…]} to call, or {"response": "…"} to answer (the only choice under tool_choice none).
// Past calls and tool results are written in the same JSON, as user and assistant turns any
// template renders. The block is the same whatever tool_choice and parallel_tool_calls say (the
// constraint enforces both), so every turn of a tool loop shares its prompt's prefix with the one
// before (the KV cache keeps it), however a client sets them from turn to turn.
import { JsonReplyParser } from "../reply-parser.ts";
import type { Conversation } from "../types.ts";
import type { TemplateInput } from "../chat-template.ts";
import { argumentsValue, callable, parametersOf, templateTools, type ToolFormat } from "./format.ts";

function instructions(conv: Conversation): string {
  return `You can use these tools:\n${templateTools(conv.tools).map((t) => JSON.stringify(t.function)).join("\n")}\n\n` +
    'To call tools, reply with a JSON object {"tool_calls": [{"name": <tool name>, "arguments": <arguments object>}]}. ' +
    'To answer the user directly, reply with {"response": <your answer>}.' +
    ' A tool\'s result comes back as {"tool_response": {"tool_call_id", "name", "content"}}.' +
    ' Once the results answer the question, reply with {"response": <your answer>} and do not call the same tool again.';
}

/**
 * A past call's arguments as the client sent them back, which is the text the model wrote when this
 * server made the call; with the reply's JSON spaced as models write it (`{"name": …, "arguments": …`),
 * the rendered turn repeats the generated tokens up to the call's id, and the next request reuses
 * them from the KV cache instead of decoding them again. Arguments that are not JSON are quoted.
 */
function argumentsText(text: string): string {
  const value = argumentsValue(text);
  return typeof value === "string" && value === text ? JSON.stringify(text) : text.trim();
}

function render(conv: Conversation): TemplateInput {
  const tools = conv.tools.length > 0;
  const messages: Record<string, unknown>[] = [];
  const names = new Map<string, string>();
  for (const m of conv.messages) {
    switch (m.role) {
      case "system":
      case "developer":
      case "user":
        messages.push({ role: m.role === "developer" ? "system" : m.role, content: m.content });
        break;
      case "assistant": {
        if (!m.toolCalls?.length) {
          messages.push({ role: "assistant", content: tools ? `{"response": ${JSON.stringify(m.content ?? "")}}` : m.content ?? "" });
          break;
        }
        for (const c of m.toolCalls) names.set(c.id, c.name);
        const calls = m.toolCalls.map((c) => `{"name": ${JSON.stringify(c.name)}, "arguments": ${argumentsText(c.arguments)}, "id": ${JSON.stringify(c.id)}}`);
        messages.push({ role: "assistant", content: `{"tool_calls": [${calls.join(", ")}]}` });
        break;
      }
      case "tool": {
        const result = JSON.stringify({ tool_response: { tool_call_id: m.toolCallId, name: m.name ?? names.get(m.toolCallId) ?? "", content: m.content } });
        // consecutive results share one user turn (templates that insist on alternation accept it)
        const last = messages.at(-1);
        if (last?.role === "user" && typeof last.content === "string" && last.content.startsWith('{"tool_response"')) last.content += `\n${result}`;
        else messages.push({ role: "user", content: result });
        break;
      }
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }
  if (!tools) return { messages };
  const first = messages[0];
  if (first?.role === "system") first.content = `${first.content}\n\n${instructions(conv)}`;
  else messages.unshift({ role: "system", content: instructions(conv) });
  return { messages };
}

/** the reply's schema: a list of calls of the callable tools, or (auto) an answer, or (none) only an answer */
export function genericSchema(conv: Conversation): Record<string, unknown> {
  const answer = { type: "object", properties: { response: conv.answerSchema ?? { type: "string" } }, required: ["response"], additionalProperties: false };
  if (conv.toolChoice === "none") return answer;
  const call = { anyOf: callable(conv).map((t) => ({ type: "object", properties: { name: { const: t.name }, arguments: parametersOf(t) }, required: ["name", "arguments"], additionalProperties: false })) };
  const calls = { type: "object", properties: { tool_calls: { type: "array", items: call, minItems: 1, maxItems: conv.maxToolCalls } }, required: ["tool_calls"], additionalProperties: false };
  if (conv.toolChoice !== "auto") return calls;
  return { anyOf: [calls, answer] };
}

export const generic: ToolFormat = {
  name: "generic",
  specialText: [],
  render,
  // a plain JSON Schema: xgrammar's own compiler (whitespace bounded to 12 in a row) writes a mask in
  // 7-17 us where the converter's GBNF inside a structural tag took 50 us to 1.7 ms (p90), tens of ms
  // at worst: at concurrency 8 that was most of a tool round trip (bench/results-tools.md)
  constraint: (conv) => (conv.tools.length === 0 ? undefined : { type: "json_schema", schema: JSON.stringify(genericSchema(conv)), field: "tools" }),
  parser: (conv) => (conv.tools.length > 0 ? new JsonReplyParser() : null),
};
