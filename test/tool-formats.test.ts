// Tool-call formats without a model: each family's real chat template (llama.cpp's tree) renders a
// whole tool loop, each parser reads its family's reply however the stream is cut into chunks, and
// each tool-call constraint accepts exactly the reply its parser expects.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import xgrammar from "@mlc-ai/web-xgrammar";
import { ChatTemplate } from "../src/conversation/chat-template.ts";
import { JsonReplyParser, MarkerParser, type ReplyParser } from "../src/conversation/reply-parser.ts";
import { toolFormatOf, TOOL_FORMATS, type ToolFormat } from "../src/conversation/tool-formats/index.ts";
import { mistralId } from "../src/conversation/tool-formats/mistral.ts";
import { planTurn, Reply } from "../src/conversation/turn.ts";
import type { Conversation } from "../src/conversation/types.ts";
import { llamaSourceDir } from "../src/gguf/paths.ts";
import { DEFAULT_CHAT_TEMPLATE } from "../src/conversation/chat-template.ts";

const templateText = (name: string) => readFileSync(join(llamaSourceDir(), "models", "templates", `${name}.jinja`), "utf8");
const TOKENS = { bosText: "<s>", eosText: "</s>", controlTokens: ["<|im_start|>", "<|im_end|>"] };

const WEATHER = { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"], additionalProperties: false };
const conv = (over: Partial<Conversation> = {}): Conversation => ({
  messages: [
    { role: "system", content: "You are helpful." },
    { role: "user", content: "Weather in Paris and Oslo?" },
    { role: "assistant", content: null, toolCalls: [{ id: "call_abc123xyz000", name: "get_weather", arguments: '{"city": "Paris"}' }] },
    { role: "tool", content: "21 C, sunny", toolCallId: "call_abc123xyz000" },
    { role: "assistant", content: "21 C and sunny in Paris." },
    { role: "user", content: "And tomorrow?" },
  ],
  tools: [{ name: "get_weather", description: "Current weather of a city", parameters: WEATHER }, { name: "get_time", parameters: { type: "object", properties: { tz: { type: "string" } } } }],
  toolChoice: "auto",
  parallelToolCalls: true,
  maxToolCalls: 8,
  ...over,
});

const FAMILIES: { template: string; format: ToolFormat; reply: string; content: string; calls: [string, unknown][] }[] = [
  {
    template: "Qwen-Qwen2.5-7B-Instruct", format: TOOL_FORMATS.hermes, content: "Let me check.\n",
    reply: 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Oslo"}}\n</tool_call>',
    calls: [["get_weather", { city: "Paris", days: 2 }], ["get_time", { tz: "Europe/Oslo" }]],
  },
  {
    template: "NousResearch-Hermes-3-Llama-3.1-8B-tool_use", format: TOOL_FORMATS.hermes, content: "",
    reply: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
    calls: [["get_weather", { city: "Oslo" }]],
  },
  {
    template: "meta-llama-Llama-3.1-8B-Instruct", format: TOOL_FORMATS.llama3, content: "",
    reply: '{"name": "get_weather", "parameters": {"city": "Paris", "days": 1}}',
    calls: [["get_weather", { city: "Paris", days: 1 }]],
  },
  {
    template: "meta-llama-Llama-3.2-3B-Instruct", format: TOOL_FORMATS.llama3, content: "",
    reply: '<|python_tag|>{"name": "get_time", "parameters": {"tz": "UTC"}}',
    calls: [["get_time", { tz: "UTC" }]],
  },
  {
    template: "mistralai-Mistral-Nemo-Instruct-2407", format: TOOL_FORMATS.mistral, content: "",
    reply: '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {"tz": "CET"}, "id": "a1b2c3d4e"}]',
    calls: [["get_weather", { city: "Paris" }], ["get_time", { tz: "CET" }]],
  },
];

/** the reply fed in chunks cut at `cuts` */
function parseInChunks(parser: ReplyParser, text: string, cuts: number[]): Reply {
  const reply = new Reply();
  let at = 0;
  for (const c of [...cuts, text.length]) {
    reply.add(parser.push(text.slice(at, c)));
    at = c;
  }
  reply.add(parser.end());
  return reply;
}

function expectReply(reply: Reply, content: string, calls: [string, unknown][]) {
  expect(reply.content).toBe(content);
  expect(reply.calls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual(calls);
  for (const c of reply.calls) expect(c.id).toMatch(/^call_[0-9a-f]{24}$/);
}

describe("format detection", () => {
  test("each family's template gets its format; a template without tools gets the generic one", () => {
    for (const f of FAMILIES) expect(toolFormatOf(templateText(f.template)).name).toBe(f.format.name);
    expect(toolFormatOf(templateText("Qwen-Qwen3-0.6B")).name).toBe("hermes");
    expect(toolFormatOf(templateText("Mistral-Small-3.2-24B-Instruct-2506")).name).toBe("mistral");
    expect(toolFormatOf(templateText("meta-llama-Llama-3.3-70B-Instruct")).name).toBe("llama3");
    expect(toolFormatOf(DEFAULT_CHAT_TEMPLATE).name).toBe("generic");
    expect(toolFormatOf(templateText("HuggingFaceTB-SmolLM3-3B")).name).toBe("generic");
    expect(toolFormatOf(templateText("Qwen3-Coder")).name).toBe("generic"); // XML calls: not this JSON format
  });
});

describe.each(FAMILIES)("$template ($format.name)", (f) => {
  test("renders a whole tool loop: the tools, the earlier call with its arguments, the tool's result", () => {
    const t = new ChatTemplate(templateText(f.template), TOKENS);
    const prompt = planTurn(t, conv()).prompt;
    expect(prompt).toContain("get_weather");
    expect(prompt).toContain("Current weather of a city");
    expect(prompt).toContain('"Paris"');
    expect(prompt).toContain("21 C, sunny");
    expect(prompt).toContain("And tomorrow?");
    // tool_choice none: the tools are not offered, and the reply is all text
    const none = planTurn(t, conv({ toolChoice: "none" }));
    expect(none.prompt).not.toContain("Current weather of a city");
    expect(none.parser()).toBeNull();
  });

  test("parses the reply whole, and cut at every position into two chunks, and one character at a time", () => {
    expectReply(parseInChunks(f.format.parser(conv())!, f.reply, []), f.content, f.calls);
    for (let cut = 1; cut < f.reply.length; cut++) expectReply(parseInChunks(f.format.parser(conv())!, f.reply, [cut]), f.content, f.calls);
    expectReply(parseInChunks(f.format.parser(conv())!, f.reply, Array.from({ length: f.reply.length }, (_, i) => i)), f.content, f.calls);
  });

  test("the tool-call constraint accepts the reply its parser reads, and refuses an unknown tool or a wrong argument type", async () => {
    const spec = f.format.constraint(conv({ toolChoice: f.content ? "auto" : "required" })); // text before a call: auto only
    expect(spec?.type).toBe("structural_tag");
    const grammar = await xgrammar.Grammar.fromStructuralTag((spec as { tag: string }).tag);
    const reply = f.reply.replace("<|python_tag|>", "").replace(', "id": "a1b2c3d4e"', "");
    expect(await xgrammar.Testings.isGrammarAcceptString(grammar, reply)).toBe(true);
    expect(await xgrammar.Testings.isGrammarAcceptString(grammar, reply.replace("get_weather", "get_wether").replace("get_time", "get_tme"))).toBe(false);
    expect(await xgrammar.Testings.isGrammarAcceptString(grammar, reply.replace(/"city": "\w+"/, '"city": 7').replace(/"tz": "[\w/]+"/, '"tz": 1'))).toBe(false);
  });
});

describe("the generic format (templates that know no tools)", () => {
  const f = TOOL_FORMATS.generic;
  test("describes the tools in a system block, and writes calls and results as JSON turns", () => {
    const t = new ChatTemplate(DEFAULT_CHAT_TEMPLATE, TOKENS);
    const prompt = t.render(f.render(conv()));
    expect(prompt).toStartWith("<|im_start|>system\nYou are helpful.\n\nYou can use these tools:");
    // the call as the model wrote it (the arguments' text as sent back, spaced as models space JSON), then its id
    expect(prompt).toContain('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_abc123xyz000"}]}');
    expect(prompt).toContain('{"response": "21 C and sunny in Paris."}');
    expect(prompt).toContain('{"tool_response":{"tool_call_id":"call_abc123xyz000","name":"get_weather","content":"21 C, sunny"}}');
    const odd = conv({ messages: [{ role: "user", content: "x" }, { role: "assistant", content: null, toolCalls: [{ id: "c1", name: "get_time", arguments: '{ "tz" :"UTC"}\n' }, { id: "c2", name: "get_time", arguments: "not json" }] }] });
    expect(t.render(f.render(odd))).toContain('{"tool_calls": [{"name": "get_time", "arguments": { "tz" :"UTC"}, "id": "c1"}, {"name": "get_time", "arguments": "not json", "id": "c2"}]}');
    // the block is the same whatever the request's tool settings: the next turn reuses the cached prefix
    for (const over of [{ toolChoice: "none" }, { toolChoice: "required" }, { parallelToolCalls: false, maxToolCalls: 1 }] as Partial<Conversation>[]) {
      expect(t.render(f.render(conv(over)))).toBe(prompt);
    }
  });

  test("a call or an answer, streamed in any chunks; an answer's text streams as it is written", () => {
    const calls = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]}';
    for (let cut = 1; cut < calls.length; cut++) expectReply(parseInChunks(new JsonReplyParser(), calls, [cut]), "", [["get_weather", { city: "Paris" }], ["get_time", {}]]);
    const answer = '{"response": "Sunny, 21 \\u00b0C \\"today\\"\\n"}';
    for (let cut = 1; cut < answer.length; cut++) expectReply(parseInChunks(new JsonReplyParser(), answer, [cut]), 'Sunny, 21 °C "today"\n', []);
    // the text arrives before the reply ends
    const p = new JsonReplyParser();
    expect(p.push('{"response": "Hello wor')).toEqual([{ type: "text", text: "Hello wor" }]);
  });

  test("required or a named tool: only calls (of that tool), at most one without parallel calls", () => {
    const schema = (c: Partial<Conversation>) => JSON.parse((f.constraint(conv(c)) as { schema: string }).schema);
    expect(schema({ toolChoice: "required" }).properties.tool_calls.minItems).toBe(1);
    expect(schema({ toolChoice: { name: "get_time" } }).properties.tool_calls.items.anyOf.map((s: { properties: { name: { const: string } } }) => s.properties.name.const)).toEqual(["get_time"]);
    expect(schema({ toolChoice: "required", parallelToolCalls: false, maxToolCalls: 1 }).properties.tool_calls.maxItems).toBe(1);
    expect(schema({}).anyOf).toHaveLength(2);
    // none: the same tools block (the prompt's prefix stays the same), but only an answer
    expect(schema({ toolChoice: "none" }).properties.response).toEqual({ type: "string" });
    expect(f.constraint(conv({ tools: [] }))).toBeUndefined();
  });
});

describe("marker parsing", () => {
  test("text that only looks like the start of a marker is content; markup never leaks into content", () => {
    const p = new MarkerParser({ markers: [{ text: "<tool_call>", inBody: false }], array: false, close: "</tool_call>" });
    const r = parseInChunks(p, "a <tool and <b>bold</b> <tool_c", [3, 7, 20]);
    expect(r.content).toBe("a <tool and <b>bold</b> <tool_c");
    expect(r.calls).toHaveLength(0);
  });

  test("a call cut by max_tokens is dropped, not shown as markup", () => {
    const r = parseInChunks(TOOL_FORMATS.hermes.parser(conv())!, 'Sure. <tool_call>\n{"name": "get_weather", "argu', []);
    expect(r.content).toBe("Sure. ");
  });

  test("arguments stream in fragments as they are written, after the name", () => {
    const p = TOOL_FORMATS.hermes.parser(conv())!;
    expect(p.push('<tool_call>\n{"name": "get_weather", "arguments": {"ci')).toEqual([
      { type: "call", index: 0, id: expect.any(String), name: "get_weather" },
      { type: "arguments", index: 0, fragment: '{"ci' },
    ]);
    expect(p.push('ty": "Paris"}}\n</tool_call>')).toEqual([{ type: "arguments", index: 0, fragment: 'ty": "Paris"}' }]);
  });

  test("Mistral ids: any id becomes the 9 letters and digits its templates insist on, the same each time", () => {
    expect(mistralId("call_abc123xyz000")).toMatch(/^[A-Za-z0-9]{9}$/);
    expect(mistralId("call_abc123xyz000")).toBe(mistralId("call_abc123xyz000"));
    expect(mistralId("a1b2c3d4e")).toBe("a1b2c3d4e");
  });
});
