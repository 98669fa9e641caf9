// The Responses API through the official openai SDK on the real engine: turns continued by
// previous_response_id on the durable session behind each stored response (after a restart too),
// typed stream events in the spec's order, structured output, a function-call round trip, the
// stored responses' routes, branches, and bad inputs in OpenAI's error shape.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Ajv from "ajv";
import OpenAI from "openai";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(240_000);

const clientOf = (t: TestApp) =>
  new OpenAI({ baseURL: "http://local/v1", apiKey: "unused", maxRetries: 0, fetch: (url, init) => t.app.handle(new Request(url as string, init as RequestInit)) });
const greedy = { model: "m", temperature: 0, max_output_tokens: 8 } as const;

let dir: string;
let t: TestApp;
let client: OpenAI;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "responses-"));
  t = await startTestApp({ CTX_SIZE: "2048", SESSION_DIR: dir, MAX_TOOL_CALLS: "2" });
  client = clientOf(t);
}, 300_000);
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("responses.create", () => {
  test("a 3-turn conversation by previous_response_id: each turn takes the conversation so far from its session", async () => {
    const r1 = await client.responses.create({ ...greedy, instructions: "Be brief.", input: "Name a colour." });
    expect(r1.object).toBe("response");
    expect(r1.output[0]!.type).toBe("message");
    expect(r1.output_text.length).toBeGreaterThan(0);
    const r2 = await client.responses.create({ ...greedy, instructions: "Be brief.", input: "Another one?", previous_response_id: r1.id });
    const r3 = await client.responses.create({ ...greedy, instructions: "Be brief.", input: "And a third?", previous_response_id: r2.id });
    expect(r3.previous_response_id).toBe(r2.id);
    // each turn's prompt holds the previous one's prompt and answer, and those come from the cache
    expect(r2.usage!.input_tokens).toBeGreaterThan(r1.usage!.input_tokens + r1.usage!.output_tokens);
    expect(r2.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(r1.usage!.input_tokens);
    expect(r3.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(r2.usage!.input_tokens);
    // the same conversation sent whole as chat messages gets the same greedy answer
    const chat = await client.chat.completions.create({
      model: "m", temperature: 0, max_tokens: 8,
      messages: [
        { role: "system", content: "Be brief." }, { role: "user", content: "Name a colour." }, { role: "assistant", content: r1.output_text },
        { role: "user", content: "Another one?" }, { role: "assistant", content: r2.output_text }, { role: "user", content: "And a third?" },
      ],
    });
    expect(r3.output_text).toBe(chat.choices[0]!.message.content!);
  });

  test("streamed: the typed events in the spec's order, the deltas adding up to the text", async () => {
    const stream = await client.responses.create({ ...greedy, input: "Count to three.", stream: true });
    const types: string[] = [];
    let text = "";
    let done: OpenAI.Responses.Response | null = null;
    let seq = -1;
    for await (const e of stream) {
      types.push(e.type);
      expect(e.sequence_number).toBe(seq + 1);
      seq = e.sequence_number;
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.completed" || e.type === "response.incomplete") done = e.response;
    }
    expect(types.slice(0, 4)).toEqual(["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
    expect(types.slice(-4)).toEqual(["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"]);
    expect(done!.output_text).toBe(text);
    // the streamed response was stored like any other
    expect((await client.responses.retrieve(done!.id)).output_text).toBe(text);
  });

  test("text.format json_schema: the output validates", async () => {
    const schema = { type: "object", properties: { colour: { enum: ["red", "green", "blue"] }, n: { type: "integer", minimum: 1, maximum: 9 } }, required: ["colour", "n"], additionalProperties: false };
    const r = await client.responses.create({ model: "m", input: "A colour and a digit.", max_output_tokens: 60, temperature: 1, text: { format: { type: "json_schema", name: "pick", schema, strict: true } } });
    expect(r.status).toBe("completed");
    expect(new Ajv().validate(schema, JSON.parse(r.output_text))).toBe(true);
  });

  test("a function-call round trip: a function_call item, its output sent back by previous_response_id, then an answer", async () => {
    const tools: OpenAI.Responses.Tool[] = [{ type: "function", name: "get_weather", description: "Weather in a city", strict: true, parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false } }];
    const r1 = await client.responses.create({ model: "m", input: "Weather in Paris?", tools, tool_choice: "required", parallel_tool_calls: false, max_output_tokens: 200, ...({ seed: 1 } as object) });
    const calls = r1.output.filter((o) => o.type === "function_call");
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) expect(typeof JSON.parse(c.arguments).city).toBe("string");
    const r2 = await client.responses.create({
      ...greedy, previous_response_id: r1.id, tools, tool_choice: "none",
      input: calls.map((c) => ({ type: "function_call_output" as const, call_id: c.call_id, output: "21 C, sunny" })),
    });
    expect(r2.output[0]!.type).toBe("message");
    expect(r2.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
  });
});

describe("stored responses", () => {
  test("retrieve, input_items and delete; an unknown id is a 404 in OpenAI's shape", async () => {
    const r = await client.responses.create({ ...greedy, input: [{ role: "user", content: "Hi" }, { role: "user", content: [{ type: "input_text", text: "there" }] }] });
    expect((await client.responses.retrieve(r.id)).id).toBe(r.id);
    const items = await client.responses.inputItems.list(r.id, { order: "asc" });
    expect(items.data.map((i) => (i as { content: { text: string }[] }).content[0]!.text)).toEqual(["Hi", "there"]);
    await client.responses.delete(r.id);
    const gone = await client.responses.retrieve(r.id).then(() => null, (e: unknown) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
    const raw = await t.app.handle(new Request("http://local/v1/responses/resp_nope"));
    expect(raw.status).toBe(404);
    expect(((await raw.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });

  test("store: false leaves nothing behind: no stored response, no session", async () => {
    const before = ((await (await t.app.handle(new Request("http://local/api/cache?limit=1000"))).json()) as { total: number }).total;
    const r = await client.responses.create({ ...greedy, input: "One-off", store: false });
    expect((r as unknown as { store: boolean }).store).toBe(false);
    expect(await client.responses.retrieve(r.id).then(() => "found", () => "gone")).toBe("gone");
    const after = ((await (await t.app.handle(new Request("http://local/api/cache?limit=1000"))).json()) as { total: number }).total;
    expect(after).toBe(before);
  });

  test("two turns continuing one response at once are branches, not a conflict", async () => {
    const root = await client.responses.create({ ...greedy, input: "Start." });
    const [a, b] = await Promise.all([
      client.responses.create({ ...greedy, input: "Branch A", previous_response_id: root.id, max_output_tokens: 16 }),
      client.responses.create({ ...greedy, input: "Branch B", previous_response_id: root.id, max_output_tokens: 16 }),
    ]);
    expect(a.previous_response_id).toBe(root.id);
    expect(b.previous_response_id).toBe(root.id);
    // each branch goes on from its own turn
    const a2 = await client.responses.create({ ...greedy, input: "More A", previous_response_id: a.id });
    const b2 = await client.responses.create({ ...greedy, input: "More B", previous_response_id: b.id });
    expect(a2.usage!.input_tokens).toBeGreaterThan(a.usage!.input_tokens);
    expect(b2.usage!.input_tokens).toBeGreaterThan(b.usage!.input_tokens);
  });
});

describe("after a restart", () => {
  test("a stored response continues from its session restored from SESSION_DIR", async () => {
    const d = mkdtempSync(join(tmpdir(), "responses-restart-"));
    try {
      const first = await startTestApp({ CTX_SIZE: "1024", SESSION_DIR: d });
      const r1 = await clientOf(first).responses.create({ ...greedy, input: "Remember this." });
      await first.close(); // the engine writes its sessions
      const second = await startTestApp({ CTX_SIZE: "1024", SESSION_DIR: d });
      try {
        const raw = await second.post("/v1/responses", { ...greedy, input: "Still there?", previous_response_id: r1.id });
        expect(raw.status).toBe(200);
        expect(raw.headers.get("x-session")).toBe("restored");
        const r2 = (await raw.json()) as OpenAI.Responses.Response;
        expect(r2.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(r1.usage!.input_tokens);
        expect((await clientOf(second).responses.retrieve(r1.id)).output_text).toBe(r1.output_text);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe("bad inputs: a 400 in OpenAI's shape naming the field", () => {
  const bad: [string, Record<string, unknown>, string, RegExp][] = [
    ["a built-in tool", { input: "x", tools: [{ type: "web_search" }] }, "tools[0].type", /built-in tools/],
    ["background", { input: "x", background: true }, "background", /not supported/],
    ["an unknown previous_response_id", { input: "x", previous_response_id: "resp_nope" }, "previous_response_id", /not found/],
    ["an image input", { input: [{ role: "user", content: [{ type: "input_image", image_url: "http://x/y.png" }] }] }, "input[0].content[0]", /text only/],
    ["an item of an unknown type", { input: [{ type: "computer_call_output", call_id: "c" }] }, "input[0].type", /not supported/],
    ["a function_call_output without call_id", { input: [{ type: "function_call_output", output: "x" }] }, "input[0].call_id", /non-empty string/],
    ["max_output_tokens 0", { input: "x", max_output_tokens: 0 }, "max_output_tokens", /integer ≥ 1/],
    ["max_output_tokens past the context (OpenAI names the input, as chat names messages)", { input: "x", max_output_tokens: 100_000 }, "input", /^max_output_tokens 100000 > CTX_SIZE/],
    ["a text.format schema the grammar cannot enforce", { input: "x", text: { format: { type: "json_schema", name: "x", schema: { type: "object", not: {} } } } }, "text.format.schema", /^text\.format\.schema: .*"not"/],
    ["a text.format schema of an unknown type", { input: "x", text: { format: { type: "json_schema", name: "x", schema: { type: "frob" } } } }, "text.format.schema", /unrecognized type frob/],
    ["a strict tool with an unenforceable keyword", { input: "x", tools: [{ type: "function", name: "f", parameters: { type: "object", properties: { a: { type: "string", pattern: "^a", format: "uri" } } } }] }, "tools[0].parameters", /"format" beside "pattern"/],
  ];
  for (const [what, body, param, message] of bad) {
    test(what, async () => {
      const r = await t.post("/v1/responses", body);
      expect(r.status).toBe(400);
      const { error } = (await r.json()) as { error: { message: string; param: string; type: string } };
      expect(error.param).toBe(param);
      expect(error.message).toMatch(message);
      expect(error.type).toBe("invalid_request_error");
    });
  }
});

test("output items follow the reply's order: text written after a call is a message of its own, in the stream and in the final output alike", async () => {
  const { ResponseEvents } = await import("../src/http/responses/events.ts");
  const done: Record<string, unknown>[] = [];
  const events = new ResponseEvents((type, data) => void (type === "response.output_item.done" && done.push(data.item as Record<string, unknown>)));
  events.events([{ type: "text", text: "Checking." }, { type: "call", index: 0, id: "call_1", name: "get_time" }, { type: "arguments", index: 0, fragment: '{"zone":"UTC"}' }]);
  events.events([{ type: "text", text: "Asked." }]);
  events.close();
  expect(events.items.map((i) => i.type)).toEqual(["message", "function_call", "message"]);
  expect(events.items[2]!.content).toEqual([{ type: "output_text", text: "Asked.", annotations: [], logprobs: [] }]);
  expect(events.items[1]).toMatchObject({ call_id: "call_1", name: "get_time", arguments: '{"zone":"UTC"}' });
  expect(done).toEqual(events.items);
});
