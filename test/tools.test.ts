// Tool calling on the real engine through the official openai SDK: random-weight models under the
// tool-call constraint must still call real tools with arguments that validate, in each model
// family's own format (its real template, a synthetic model on its vocabulary) and in the generic
// one for templates that know no tools.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import Ajv from "ajv";
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import { llamaSourceDir } from "../src/gguf/paths.ts";
import type { PresetName } from "../src/gguf/models.ts";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(240_000);

const ajv = new Ajv({ allErrors: true });
const WEATHER = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 }, unit: { enum: ["C", "F"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
  required: ["city", "unit", "days"],
  additionalProperties: false,
};
const TIME = { type: "object", properties: { zone: { enum: ["UTC", "CET", "PST"] } }, required: ["zone"], additionalProperties: false };
const TOOLS: ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: WEATHER, strict: true } },
  { type: "function", function: { name: "get_time", description: "The time in a zone", parameters: TIME } },
];
const validators: Record<string, (v: unknown) => boolean> = { get_weather: ajv.compile(WEATHER), get_time: ajv.compile(TIME) };
const ASK: ChatCompletionMessageParam[] = [{ role: "user", content: "What is the weather in Paris, and the time in UTC?" }];

function clientOf(t: TestApp): OpenAI {
  return new OpenAI({ baseURL: "http://local/v1", apiKey: "unused", maxRetries: 0, fetch: (url, init) => t.app.handle(new Request(url as string, init as RequestInit)) });
}

type Call = { id: string; type: string; function: { name: string; arguments: string } };
/** every call names a tool and its arguments parse and validate against that tool's schema */
function expectValidCalls(calls: Call[] | undefined, names = ["get_weather", "get_time"]) {
  expect(calls?.length ?? 0).toBeGreaterThan(0);
  for (const c of calls!) {
    expect(c.type).toBe("function");
    expect(c.id).toMatch(/^call_/);
    expect(names).toContain(c.function.name);
    const args = JSON.parse(c.function.arguments);
    if (!validators[c.function.name]!(args)) throw new Error(`${c.function.arguments} does not validate for ${c.function.name}`);
  }
}

/** a streamed reply put back together from the SDK's chunks, checking the order peers get wrong */
async function collectStream(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  let content = "";
  let finish: string | null = null;
  const calls: Call[] = [];
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? "";
    for (const d of choice.delta.tool_calls ?? []) {
      if (!calls[d.index]) {
        // a call opens with its id and its complete name, before any argument
        expect(d.id).toMatch(/^call_/);
        expect(d.function?.name?.length).toBeGreaterThan(0);
        calls[d.index] = { id: d.id!, type: "function", function: { name: d.function!.name!, arguments: d.function?.arguments ?? "" } };
      } else {
        expect(d.id).toBeUndefined();
        calls[d.index]!.function.arguments += d.function?.arguments ?? "";
      }
    }
    finish = choice.finish_reason ?? finish;
  }
  return { content, calls, finish };
}

describe("the generic format (ChatML, a template without tools)", () => {
  let t: TestApp;
  let client: OpenAI;
  beforeAll(async () => {
    t = await startTestApp({ CTX_SIZE: "2048", MAX_TOOL_CALLS: "3" });
    client = clientOf(t);
  }, 300_000);
  afterAll(() => t?.close());

  test("required: calls of real tools whose arguments validate, finish_reason tool_calls, content null", async () => {
    const r = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: "required", max_tokens: 300, seed: 3 });
    const choice = r.choices[0]!;
    expectValidCalls(choice.message.tool_calls as Call[]);
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(r.usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThanOrEqual(0);
    expect(r.system_fingerprint).toMatch(/^b/);
  });

  test("a named tool: only that tool; parallel_tool_calls false: one call", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: { type: "function", function: { name: "get_time" } }, max_tokens: 300, seed, parallel_tool_calls: false });
      expectValidCalls(r.choices[0]!.message.tool_calls as Call[], ["get_time"]);
      expect(r.choices[0]!.message.tool_calls).toHaveLength(1);
    }
  });

  test("two calls in one answer (parallel tool calls), each with its own id", async () => {
    // a random model writes a second call in ~4 % of answers: eight choices a request, until one does
    let found: Call[] | null = null;
    for (let seed = 1; seed <= 24 && !found; seed++) {
      const r = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: "required", max_tokens: 400, seed, temperature: 1, n: 8 });
      for (const choice of r.choices) {
        const calls = choice.message.tool_calls as Call[];
        expectValidCalls(calls);
        if (calls.length >= 2) found ??= calls;
      }
    }
    expect(found).not.toBeNull();
    expect(new Set(found!.map((c) => c.id)).size).toBe(found!.length);
  });

  test("none: plain content, no calls, whatever the tools", async () => {
    const r = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: "none", max_tokens: 12, temperature: 0 });
    expect(r.choices[0]!.message.tool_calls).toBeUndefined();
    expect(typeof r.choices[0]!.message.content).toBe("string");
    expect(r.choices[0]!.finish_reason).not.toBe("tool_calls");
  });

  test("streamed: each call's index, id and name first, then the arguments in fragments that add up to valid JSON", async () => {
    const stream = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: "required", max_tokens: 300, seed: 5, stream: true });
    const { content, calls, finish } = await collectStream(stream);
    expectValidCalls(calls);
    expect(content).toBe("");
    expect(finish).toBe("tool_calls");
  });

  test("the whole loop: a call, the tool's result sent back, a final answer (and the prefix of the first turn reused)", async () => {
    const first = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: "required", max_tokens: 300, seed: 7 });
    const calls = first.choices[0]!.message.tool_calls as Call[];
    expectValidCalls(calls);
    const messages: ChatCompletionMessageParam[] = [
      ...ASK,
      { role: "assistant", content: null, tool_calls: calls.map((c) => ({ id: c.id, type: "function" as const, function: c.function })) },
      ...calls.map((c) => ({ role: "tool" as const, tool_call_id: c.id, content: c.function.name === "get_time" ? "12:00" : "21 C, sunny" })),
    ];
    const last = await client.chat.completions.create({ model: "m", messages, tools: TOOLS, tool_choice: "none", max_tokens: 8, temperature: 0 });
    expect(typeof last.choices[0]!.message.content).toBe("string");
    expect(last.choices[0]!.message.tool_calls).toBeUndefined();
    // auto on the same history: either an answer or more valid calls, never markup; the first
    // turn's prompt (tools block, question) comes from the cache
    const auto = await client.chat.completions.create({ model: "m", messages, tools: TOOLS, max_tokens: 300, seed: 2 });
    expect(auto.usage!.prompt_tokens).toBeGreaterThan(first.usage!.prompt_tokens);
    expect(auto.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(first.usage!.prompt_tokens / 2);
    const m = auto.choices[0]!.message;
    if (m.tool_calls) expectValidCalls(m.tool_calls as Call[]);
    else expect(m.content ?? "").not.toContain('"tool_calls"');
  });
});

/** a family's real template from llama.cpp's tree, on a synthetic model with that family's vocabulary */
const FAMILIES: { name: string; preset: PresetName; template: string; markup: string }[] = [
  { name: "Hermes/Qwen", preset: "tiny-qwen2", template: "Qwen-Qwen2.5-7B-Instruct", markup: "<tool_call>" },
  { name: "Llama 3.1", preset: "tiny-bpe", template: "meta-llama-Llama-3.1-8B-Instruct", markup: '{"name"' },
  { name: "Mistral", preset: "tiny", template: "mistralai-Mistral-Nemo-Instruct-2407", markup: "[TOOL_CALLS]" },
];

describe.each(FAMILIES)("$name's own format ($template)", (f) => {
  let t: TestApp;
  let client: OpenAI;
  beforeAll(async () => {
    t = await startTestApp({ CTX_SIZE: "2048", MAX_TOOL_CALLS: "3", CHAT_TEMPLATE: join(llamaSourceDir(), "models", "templates", `${f.template}.jinja`) }, f.preset);
    client = clientOf(t);
  }, 300_000);
  afterAll(() => t?.close());

  test("required, streamed and not: valid calls in the family's markup, none of it in content", async () => {
    const r = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: "required", max_tokens: 300, seed: 4 });
    expectValidCalls(r.choices[0]!.message.tool_calls as Call[]);
    expect(r.choices[0]!.finish_reason).toBe("tool_calls");
    const s = await collectStream(await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: "required", max_tokens: 300, seed: 6, stream: true }));
    expectValidCalls(s.calls);
    expect(s.content).not.toContain(f.markup);
  });

  test("the tool's result goes back through the family's template, and the next turn runs", async () => {
    const first = await client.chat.completions.create({ model: "m", messages: ASK, tools: TOOLS, tool_choice: { type: "function", function: { name: "get_weather" } }, max_tokens: 300, seed: 8 });
    const calls = first.choices[0]!.message.tool_calls as Call[];
    expectValidCalls(calls, ["get_weather"]);
    const messages: ChatCompletionMessageParam[] = [
      ...ASK,
      { role: "assistant", content: null, tool_calls: calls.map((c) => ({ id: c.id, type: "function" as const, function: c.function })) },
      ...calls.map((c) => ({ role: "tool" as const, tool_call_id: c.id, content: "21 C, sunny" })),
    ];
    const next = await client.chat.completions.create({ model: "m", messages, tools: TOOLS, max_tokens: 200, seed: 1 });
    const m = next.choices[0]!.message;
    if (m.tool_calls) expectValidCalls(m.tool_calls as Call[]);
    expect(m.content ?? "").not.toContain(f.markup);
  });
});

describe("the whole chat request: neutral values pass, what cannot be honoured is a 400 naming the field", () => {
  let t: TestApp;
  beforeAll(async () => void (t = await startTestApp({ CTX_SIZE: "1024" })), 300_000);
  afterAll(() => t?.close());
  const user = [{ role: "user", content: "Hi" }];
  const post = (body: Record<string, unknown>) => t.post("/v1/chat/completions", { messages: user, max_tokens: 2, temperature: 0, ...body });

  test("what SDKs and frameworks send on every call is accepted", async () => {
    const r = await post({
      tools: null, tool_choice: null, parallel_tool_calls: true, store: false, metadata: { app: "x" }, service_tier: "auto", user: "u1",
      response_format: { type: "text" }, stream_options: null, modalities: ["text"], prompt_cache_key: "k", safety_identifier: "s",
      messages: [
        { role: "developer", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Weather?" }], name: "ann" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_time", arguments: '{"zone":"UTC"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "12:00" }] },
        { role: "assistant", content: "It is noon.", refusal: null },
        { role: "user", content: "Thanks" },
      ],
    });
    expect(r.status).toBe(200);
  });

  test("a non-strict tool's schema keeps what can be enforced (a format beside a length is dropped, not refused)", async () => {
    const tools = [{ type: "function", function: { name: "mail", parameters: { type: "object", properties: { to: { type: "string", format: "email", maxLength: 16 }, n: { type: "number", minimum: 1 } }, required: ["to"] } } }];
    const r = await post({ tools, tool_choice: "required", max_tokens: 200, seed: 1 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { choices: { message: { tool_calls: Call[] } }[] };
    expect(typeof JSON.parse(body.choices[0]!.message.tool_calls[0]!.function.arguments).to).toBe("string");
  });

  const bad: [string, Record<string, unknown>, string, RegExp][] = [
    ["a strict tool with a keyword the grammar cannot enforce", { tools: [{ type: "function", function: { name: "f", strict: true, parameters: { type: "object", properties: { a: { type: "string", format: "idn-email" } } } } }] }, "tools[0].function.parameters", /format "idn-email" at #\/properties\/a/],
    ["a strict tool with a length beside a format (xgrammar keeps the format only)", { tools: [{ type: "function", function: { name: "f", strict: true, parameters: { type: "object", properties: { a: { type: "string", format: "email", maxLength: 9 } } } } }] }, "tools[0].function.parameters", /"maxLength" beside "format" at #\/properties\/a/],
    ["a tool of another type", { tools: [{ type: "custom", custom: { name: "x" } }] }, "tools[0].type", /only "function" tools/],
    ["two tools of one name", { tools: [TOOLS[1], TOOLS[1]] }, "tools[1].function.name", /two tools are named "get_time"/],
    ["tool_choice naming a tool that is not there", { tools: TOOLS, tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice", /"nope", which is not one of the tools/],
    ["tool_choice required without tools", { tool_choice: "required" }, "tool_choice", /needs tools/],
    ["a tool_choice of no known kind", { tools: TOOLS, tool_choice: "sometimes" }, "tool_choice", /must be "none", "auto", "required"/],
    ["a tool message without tool_call_id", { messages: [...user, { role: "tool", content: "x" }] }, "messages[1].tool_call_id", /needs tool_call_id/],
    ["an image part on a text-only model", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://x/y.png" } }] }] }, "messages[0].content[0]", /"image_url" are not supported.*text only/],
    ["audio output", { audio: { voice: "alloy", format: "wav" }, modalities: ["text", "audio"] }, "modalities", /only "text"/],
    ["the deprecated functions", { functions: [{ name: "f" }] }, "functions", /send tools instead/],
    ["an unknown role", { messages: [{ role: "wizard", content: "x" }] }, "messages[0].role", /role must be one of system, developer, user, assistant, tool/],
    ["max_tokens 0", { max_tokens: 0 }, "max_tokens", /max_tokens must be an integer ≥ 1/],
    ["grammar beside tools", { tools: TOOLS, grammar: 'root ::= "x"' }, "grammar", /cannot be combined with tools/],
  ];
  for (const [what, body, param, message] of bad) {
    test(`${what}: 400, param ${param}`, async () => {
      const r = await post(body);
      expect(r.status).toBe(400);
      const { error } = (await r.json()) as { error: { message: string; param: string; type: string } };
      expect(error.param).toBe(param);
      expect(error.message).toMatch(message);
      expect(error.type).toBe("invalid_request_error");
    });
  }

  test("a conversation over the context is context_length_exceeded on messages", async () => {
    const r = await post({ messages: [{ role: "user", content: "word ".repeat(3000) }] });
    expect(r.status).toBe(400);
    const { error } = (await r.json()) as { error: { code: string; param: string } };
    expect(error).toMatchObject({ code: "context_length_exceeded", param: "messages" });
  });

  test("response_format beside tools: an answer that calls no tool is JSON of that schema", async () => {
    const schema = { type: "object", properties: { answer: { enum: ["yes", "no"] } }, required: ["answer"], additionalProperties: false };
    for (const seed of [1, 2, 3, 4]) {
      const r = await post({ tools: TOOLS, max_tokens: 300, seed, temperature: 1, response_format: { type: "json_schema", json_schema: { name: "a", schema } } });
      expect(r.status).toBe(200);
      const m = ((await r.json()) as { choices: { message: { content: string | null; tool_calls?: Call[] }; finish_reason: string }[] }).choices[0]!;
      if (m.message.tool_calls) expectValidCalls(m.message.tool_calls);
      else if (m.finish_reason === "stop") expect(["yes", "no"]).toContain(JSON.parse(m.message.content!).answer);
    }
  });
});
