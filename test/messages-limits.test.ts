// Anthropic's Messages API at its edges, on the real engine: stop sequences (which one was met),
// max_tokens past the context, a prompt that does not fit, what clients send at neutral values, and
// every refusal in Anthropic's shape, naming the field; the OpenAPI document lists the routes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import { ASK, clientOf, GREEDY, TOOLS, textOf } from "./helpers/anthropic.ts";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(240_000);

describe("stop sequences, max_tokens past the context, and refusals in Anthropic's shape", () => {
  let t: TestApp;
  let client: Anthropic;
  // bit-stable greedy text (no reused prefixes), so that a second run says what the first said
  beforeAll(async () => {
    t = await startTestApp({ CTX_SIZE: "128", PREFIX_REUSE_MIN_TOKENS: "0" });
    client = clientOf(t);
  }, 300_000);
  afterAll(() => t?.close());
  const HI: Anthropic.MessageParam[] = [{ role: "user", content: "Hi" }];
  const post = (body: Record<string, unknown>, path = "/v1/messages") => t.post(path, { model: "m", max_tokens: 4, messages: HI, ...body });

  test("stop_reason stop_sequence names the sequence met first in the text (not the first listed), which is cut", async () => {
    const plain = textOf(await client.messages.create({ model: "m", max_tokens: 24, messages: HI, ...GREEDY }));
    const words = [...new Set(plain.split(/\s+/).filter((w) => /^\p{L}{3,}$/u.test(w)))];
    expect(words.length).toBeGreaterThanOrEqual(2);
    const [early, late] = [...words.slice(0, 2)].sort((a, b) => plain.indexOf(a) - plain.indexOf(b));
    const m = await client.messages.create({ model: "m", max_tokens: 24, messages: HI, stop_sequences: ["never-written", late!, early!], ...GREEDY });
    expect(m.stop_reason).toBe("stop_sequence");
    expect(m.stop_sequence).toBe(early!);
    expect(textOf(m)).toBe(plain.slice(0, plain.indexOf(early!)));
    // streamed: message_delta says the same
    const last = await client.messages.stream({ model: "m", max_tokens: 24, messages: HI, stop_sequences: [late!, early!], ...GREEDY }).finalMessage();
    expect(last.stop_reason).toBe("stop_sequence");
    expect(last.stop_sequence).toBe(early!);
    // a stop sequence never met: the text runs to max_tokens
    const none = await client.messages.create({ model: "m", max_tokens: 24, messages: HI, stop_sequences: ["never-written"], ...GREEDY });
    expect(none.stop_reason).toBe("max_tokens");
    expect(none.stop_sequence).toBeNull();
    expect(textOf(none)).toBe(plain);
  });

  test("max_tokens past the context: the answer fills the context, stop_reason model_context_window_exceeded", async () => {
    const m = await client.messages.create({ model: "m", max_tokens: 16_000, messages: HI, ...GREEDY });
    expect(m.stop_reason).toBe("model_context_window_exceeded");
    expect(m.usage.input_tokens + m.usage.cache_read_input_tokens! + m.usage.output_tokens).toBe(128);
  });

  test("a prompt that does not fit: 400 invalid_request_error, \"prompt is too long\" (the SDK's BadRequestError)", async () => {
    const err = await client.messages.create({ model: "m", max_tokens: 4, messages: [{ role: "user", content: "cat ".repeat(400) }] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    const body = (err as InstanceType<typeof Anthropic.BadRequestError>).error as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe("error");
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.message).toMatch(/^prompt is too long: \d+ tokens > 127 maximum/);
  });

  test("what Anthropic's clients send is accepted at its neutral value", async () => {
    const r = await t.post("/v1/messages", {
      model: "claude-sonnet-4-5", max_tokens: 4, metadata: { user_id: "u1" }, service_tier: "auto", thinking: { type: "disabled" }, container: null,
      inference_geo: null, speed: "standard", output_config: { effort: "high" }, cache_control: { type: "ephemeral" }, top_k: 40, top_p: 0.9, temperature: 0.5,
      system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral", ttl: "1h" } }],
      messages: [
        { role: "user", content: [{ type: "text", text: "Hi", citations: null }] },
        { role: "assistant", content: [{ type: "thinking", thinking: "…", signature: "x" }, { type: "text", text: "Hello" }] },
        { role: "user", content: "And?" },
      ],
    }, { headers: { "anthropic-version": "2023-06-01", "anthropic-beta": "prompt-caching-2024-07-31" } });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { type: string }).type).toBe("message");
  });

  const refusals: [string, Record<string, unknown>, string][] = [
    ["max_tokens missing", { max_tokens: undefined }, "max_tokens is required"],
    ["max_tokens 0", { max_tokens: 0 }, "max_tokens must be an integer ≥ 1"],
    ["model missing", { model: undefined }, "model is required"],
    ["no messages", { messages: [] }, "messages must not be empty"],
    ["an unknown field", { foo: 1 }, "unknown field foo"],
    ["temperature past Anthropic's 1", { temperature: 1.5 }, "temperature"],
    ["a role that is not Anthropic's", { messages: [{ role: "tool", content: "x" }] }, "messages[0].role"],
    ["an image block", { messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AA==" } }] }] }, 'messages[0].content[0].type: content blocks of type "image"'],
    ["a document block", { messages: [{ role: "user", content: [{ type: "text", text: "Read" }, { type: "document", source: {} }] }] }, "messages[0].content[1].type"],
    ["a block type Anthropic does not have", { messages: [{ role: "user", content: [{ type: "video" }] }] }, "messages[0].content[0].type must be one of text"],
    ["extended thinking", { thinking: { type: "enabled", budget_tokens: 2048 } }, "thinking"],
    ["a server tool", { tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 3 }] }, "tools[0].type"],
    ["a custom tool without input_schema", { tools: [{ name: "f" }] }, "tools[0].input_schema is required"],
    ["a custom tool with an unknown field", { tools: [{ name: "f", input_schema: { type: "object" }, foo: 1 }] }, "unknown field tools[0].foo"],
    ["a strict tool with a keyword the grammar cannot enforce", { tools: [{ name: "f", strict: true, input_schema: { type: "object", not: {} } }] }, "tools[0].input_schema"],
    ["tool_choice naming no tool", { tools: TOOLS, tool_choice: { type: "tool", name: "nope" } }, "tool_choice.name"],
    ["tool_choice any without tools", { tool_choice: { type: "any" } }, "tool_choice"],
    ["a tool_result answering no tool_use", { messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "1" }] }] }, "messages[0].content[0].tool_use_id"],
    ["a tool_use in a user message", { messages: [{ role: "user", content: [{ type: "tool_use", id: "toolu_1", name: "f", input: {} }] }] }, "messages[0].content[0].type"],
    ["an image in a tool result", {
      messages: [...ASK, { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_time", input: { zone: "UTC" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "image", source: {} }] }] }], tools: TOOLS,
    }, "messages[2].content[0].content[0].type"],
    ["a prefilled answer (a final assistant message)", { messages: [...HI, { role: "assistant", content: "The answer is" }] }, "messages[1]"],
    ["a whitespace stop sequence", { stop_sequences: ["\n"] }, "stop_sequences[0]"],
    ["a container", { container: "container_1" }, "container"],
    ["an effort other than the default", { output_config: { effort: "low" } }, "output_config.effort"],
    ["an output schema the grammar cannot enforce", { output_config: { format: { type: "json_schema", schema: { type: "object", not: {} } } } }, "output_config.format.schema"],
  ];
  test.each(refusals)("%s: 400 invalid_request_error naming it", async (_name, body, words) => {
    const r = await post(body);
    expect(r.status).toBe(400);
    const j = (await r.json()) as { type: string; error: { type: string; message: string } };
    expect(j.type).toBe("error");
    expect(j.error.type).toBe("invalid_request_error");
    expect(j.error.message).toContain(words);
  });

  test("count_tokens refuses in the same shape; unparseable bodies, unknown routes and methods too", async () => {
    const bad = await post({ max_tokens: undefined, messages: [{ role: "user", content: [{ type: "image", source: {} }] }] }, "/v1/messages/count_tokens");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("messages[0].content[0].type");
    const extra = await post({}, "/v1/messages/count_tokens"); // max_tokens belongs to create only
    expect(((await extra.json()) as { error: { message: string } }).error.message).toBe("unknown field max_tokens");
    const json = await t.post("/v1/messages", "{nope");
    expect(json.status).toBe(400);
    expect(((await json.json()) as { type: string; error: { type: string } }).error.type).toBe("invalid_request_error");
    const missing = await t.post("/v1/messages/nope", {});
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ type: "error", error: { type: "not_found_error", message: "no such route" } });
    const method = await t.app.handle(new Request("http://local/v1/messages"));
    expect(method.status).toBe(405);
    expect(((await method.json()) as { type: string }).type).toBe("error");
    // the rest of /v1 keeps OpenAI's shape
    const openai = await t.post("/v1/chat/completions", { messages: [] });
    expect(((await openai.json()) as { error: { param: string } }).error.param).toBe("messages");
  });

  test("/openapi/json lists both routes with their request schemas", async () => {
    const spec = (await (await t.app.handle(new Request("http://local/openapi/json"))).json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: object } }> } }>> };
    for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
      const schema = spec.paths[path]?.post?.requestBody?.content["application/json"]?.schema;
      expect(Object.keys(schema?.properties ?? {})).toContain("messages");
    }
    expect(Object.keys(spec.paths["/v1/messages"]!.post!.requestBody!.content["application/json"]!.schema.properties)).toContain("max_tokens");
  });
});
