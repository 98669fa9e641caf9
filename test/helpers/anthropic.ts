// The official Anthropic SDK pointed at a test app, and the tools the Messages tests call.
import { expect } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import Ajv from "ajv";
import type { TestApp } from "./app.ts";

export const ajv = new Ajv({ allErrors: true });
export const WEATHER = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 }, unit: { enum: ["C", "F"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
  required: ["city", "unit", "days"],
  additionalProperties: false,
};
export const TIME = { type: "object", properties: { zone: { enum: ["UTC", "CET", "PST"] } }, required: ["zone"], additionalProperties: false };
export const TOOLS: Anthropic.Tool[] = [
  { name: "get_weather", description: "The weather in a city", input_schema: WEATHER as Anthropic.Tool.InputSchema, strict: true },
  { name: "get_time", description: "The time in a zone", input_schema: TIME as Anthropic.Tool.InputSchema },
];
export const validators: Record<string, (v: unknown) => boolean> = { get_weather: ajv.compile(WEATHER), get_time: ajv.compile(TIME) };
export const ASK: Anthropic.MessageParam[] = [{ role: "user", content: "What is the weather in Paris, and the time in UTC?" }];
/** sampling fields the SDK's types no longer list (Anthropic still takes them); spread, so that they pass its types */
export const GREEDY: object = { temperature: 0 };

export function clientOf(t: TestApp, apiKey = "unused"): Anthropic {
  return new Anthropic({ baseURL: "http://local", apiKey, maxRetries: 0, fetch: (url, init) => t.app.handle(new Request(url as string, init as RequestInit)) });
}

/** the message's tool_use blocks; each names a tool and its input validates against that tool's schema */
export function validUses(m: Anthropic.Message, names = ["get_weather", "get_time"]): Anthropic.ToolUseBlock[] {
  const uses = m.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
  expect(uses.length).toBeGreaterThan(0);
  for (const u of uses) {
    expect(u.id).toMatch(/^toolu_/);
    expect(names).toContain(u.name);
    expect(typeof u.input).toBe("object");
    if (!validators[u.name]!(u.input)) throw new Error(`${JSON.stringify(u.input)} does not validate for ${u.name}`);
  }
  return uses;
}

export const textOf = (m: Anthropic.Message) => m.content.map((b) => (b.type === "text" ? b.text : "")).join("");

/** the tool results a client sends back for `uses` */
export const results = (uses: Anthropic.ToolUseBlock[]): Anthropic.ToolResultBlockParam[] =>
  uses.map((u) => ({ type: "tool_result", tool_use_id: u.id, content: u.name === "get_time" ? "12:00" : [{ type: "text", text: "21 C, sunny" }] }));
