// Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) on the real engine through the
// official @anthropic-ai/sdk: text, tool round trips (create and stream) in the generic tool format
// on a synthetic model, tool_choice any/tool whose input validates, structured output, usage as
// Anthropic counts it (and count_tokens agreeing), the raw event stream and its content blocks.
// Stop sequences, the context's limit and refusals: messages-limits.test.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import { ContentBuilder } from "../src/http/messages/content.ts";
import { ajv, ASK, clientOf, GREEDY, results, TOOLS, textOf, validUses } from "./helpers/anthropic.ts";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(240_000);

/** a raw SSE body as [event, data] pairs */
async function events(r: Response): Promise<[string, Record<string, unknown>][]> {
  const out: [string, Record<string, unknown>][] = [];
  for (const frame of (await r.text()).split("\n\n")) {
    if (!frame.trim()) continue;
    const name = /^event: (.+)$/m.exec(frame)?.[1];
    const data = /^data: (.+)$/m.exec(frame)?.[1];
    expect(name).toBeDefined();
    out.push([name!, JSON.parse(data!)]);
  }
  return out;
}

describe("the Anthropic SDK on the generic tool format (ChatML, a synthetic model)", () => {
  let t: TestApp;
  let client: Anthropic;
  beforeAll(async () => {
    t = await startTestApp({ CTX_SIZE: "2048", MAX_TOOL_CALLS: "3" });
    client = clientOf(t);
  }, 300_000);
  afterAll(() => t?.close());

  test("messages.create: a text message with Anthropic's fields, usage counted as Anthropic counts it", async () => {
    const m = await client.messages.create({ model: "claude-any", max_tokens: 12, messages: [{ role: "user", content: "Hello there" }], ...GREEDY });
    expect(m.id).toMatch(/^msg_/);
    expect(m.type).toBe("message");
    expect(m.role).toBe("assistant");
    expect(m.model).toBe(t.settings.modelPath!.split("/").pop()!.replace(/\.gguf$/, ""));
    expect(m.content.every((b) => b.type === "text")).toBe(true);
    expect(["end_turn", "max_tokens"]).toContain(m.stop_reason!);
    expect(m.stop_sequence).toBeNull();
    expect(m.usage.output_tokens).toBeGreaterThan(0);
    expect(m.usage.output_tokens).toBeLessThanOrEqual(12);
    expect(m.usage.cache_creation_input_tokens).toBe(0);
    // the same prompt again: its tokens come from the cache, and input_tokens is only the rest
    const again = await client.messages.create({ model: "claude-any", max_tokens: 12, messages: [{ role: "user", content: "Hello there" }], ...GREEDY });
    const total = m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0);
    expect(again.usage.input_tokens + again.usage.cache_read_input_tokens!).toBe(total);
    expect(again.usage.cache_read_input_tokens!).toBeGreaterThan(total / 2);
    const counted = await client.messages.countTokens({ model: "claude-any", messages: [{ role: "user", content: "Hello there" }] });
    expect(counted.input_tokens).toBe(total);
  });

  test("messages.create, a tool round trip: tool_choice any → tool_use → tool_result → an answer (the first turn's prompt reused)", async () => {
    const first = await client.messages.create({ model: "m", max_tokens: 300, messages: ASK, tools: TOOLS, tool_choice: { type: "any" } });
    expect(first.stop_reason).toBe("tool_use");
    const uses = validUses(first);
    expect(new Set(uses.map((u) => u.id)).size).toBe(uses.length);
    const counted = await client.messages.countTokens({ model: "m", messages: ASK, tools: TOOLS, tool_choice: { type: "any" } });
    expect(counted.input_tokens).toBe(first.usage.input_tokens + first.usage.cache_read_input_tokens!);
    const messages: Anthropic.MessageParam[] = [...ASK, { role: "assistant", content: first.content }, { role: "user", content: results(uses) }];
    const last = await client.messages.create({ model: "m", max_tokens: 8, messages, tools: TOOLS, tool_choice: { type: "none" }, ...GREEDY });
    expect(last.content.length).toBeGreaterThan(0);
    expect(last.content.every((b) => b.type === "text")).toBe(true);
    expect(["end_turn", "max_tokens"]).toContain(last.stop_reason!);
    // auto on the same history: an answer or more valid calls, never the format's markup; the first
    // turn's prompt (tools block, question) comes from the cache
    const auto = await client.messages.create({ model: "m", max_tokens: 300, messages, tools: TOOLS });
    expect(auto.usage.cache_read_input_tokens!).toBeGreaterThan(counted.input_tokens / 2);
    expect(auto.usage.input_tokens + auto.usage.cache_read_input_tokens!).toBeGreaterThan(counted.input_tokens);
    if (auto.stop_reason === "tool_use") validUses(auto);
    else expect(textOf(auto)).not.toContain('"tool_calls"');
  });

  test("tool_choice tool with disable_parallel_tool_use: exactly one call of that tool, its input valid", async () => {
    for (let i = 0; i < 3; i++) {
      const m = await client.messages.create({ model: "m", max_tokens: 300, messages: ASK, tools: TOOLS, tool_choice: { type: "tool", name: "get_time", disable_parallel_tool_use: true } });
      expect(validUses(m, ["get_time"])).toHaveLength(1);
      expect(m.stop_reason).toBe("tool_use");
    }
  });

  test("messages.stream, a tool round trip: the call's input streamed as JSON fragments, then the answer streamed as text", async () => {
    const seen: string[] = [];
    let json = "";
    const stream = client.messages.stream({ model: "m", max_tokens: 300, messages: ASK, tools: TOOLS, tool_choice: { type: "tool", name: "get_weather", disable_parallel_tool_use: true } });
    stream.on("streamEvent", (e) => void seen.push(e.type));
    stream.on("inputJson", (partial) => void (json += partial));
    const first = await stream.finalMessage();
    expect(first.stop_reason).toBe("tool_use");
    const uses = validUses(first, ["get_weather"]);
    expect(uses).toHaveLength(1);
    expect(JSON.parse(json)).toEqual(uses[0]!.input);
    expect(seen[0]).toBe("message_start");
    expect(seen.slice(-2)).toEqual(["message_delta", "message_stop"]);
    expect(seen).toContain("content_block_delta");
    expect(first.usage.output_tokens).toBeGreaterThan(0);

    const messages: Anthropic.MessageParam[] = [...ASK, { role: "assistant", content: first.content }, { role: "user", content: results(uses) }];
    const answer = client.messages.stream({ model: "m", max_tokens: 16, messages, tools: TOOLS, tool_choice: { type: "none" }, ...GREEDY });
    let deltas = "";
    answer.on("text", (d) => void (deltas += d));
    const last = await answer.finalMessage();
    expect(last.content.every((b) => b.type === "text")).toBe(true);
    expect(deltas).toBe(textOf(last));
    expect(deltas.length).toBeGreaterThan(0);
    const counted = await client.messages.countTokens({ model: "m", messages, tools: TOOLS, tool_choice: { type: "none" } });
    expect(last.usage.input_tokens + last.usage.cache_read_input_tokens!).toBe(counted.input_tokens);
  });

  test("the raw stream: message_start, ping, each block's start/deltas/stop with its index, message_delta, message_stop", async () => {
    const r = await t.post("/v1/messages", { model: "m", max_tokens: 300, stream: true, messages: ASK, tools: TOOLS, tool_choice: { type: "any" } }, { headers: { "anthropic-version": "2023-06-01" } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/event-stream");
    const all = await events(r);
    for (const [name, data] of all) expect(data.type).toBe(name);
    const names = all.map(([n]) => n);
    expect(names.slice(0, 2)).toEqual(["message_start", "ping"]);
    expect(names.slice(-2)).toEqual(["message_delta", "message_stop"]);
    const start = all[0]![1].message as { content: unknown[]; usage: { input_tokens: number; output_tokens: number; cache_read_input_tokens: number } };
    expect(start.content).toEqual([]);
    expect(start.usage.input_tokens).toBeGreaterThan(0);
    // blocks open in index order, each closed before the next opens, deltas only inside their block
    let open = -1, next = 0;
    const inputs: string[] = [];
    for (const [name, data] of all.slice(2, -2)) {
      const index = data.index as number;
      if (name === "content_block_start") {
        expect(open).toBe(-1);
        expect(index).toBe(next++);
        open = index;
        expect((data.content_block as { type: string }).type).toBe("tool_use");
        inputs[index] = "";
      } else if (name === "content_block_delta") {
        expect(index).toBe(open);
        const delta = data.delta as { type: string; partial_json: string };
        expect(delta.type).toBe("input_json_delta");
        inputs[index] += delta.partial_json;
      } else {
        expect(name).toBe("content_block_stop");
        expect(index).toBe(open);
        open = -1;
      }
    }
    expect(open).toBe(-1);
    expect(next).toBeGreaterThan(0);
    for (const input of inputs) expect(typeof JSON.parse(input)).toBe("object");
    const end = all.at(-2)![1] as { delta: { stop_reason: string }; usage: { output_tokens: number; input_tokens: number; cache_read_input_tokens: number } };
    expect(end.delta.stop_reason).toBe("tool_use");
    expect(end.usage.output_tokens).toBeGreaterThan(0);
    // message_start already splits the prompt as message_delta does, cached tokens apart (clients read its usage)
    expect([start.usage.input_tokens, start.usage.cache_read_input_tokens]).toEqual([end.usage.input_tokens, end.usage.cache_read_input_tokens]);
  });

  test("output_config.format: the answer is JSON that validates against the schema", async () => {
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 12 }, rank: { type: "integer", minimum: 1, maximum: 9 } }, required: ["name", "rank"], additionalProperties: false };
    const m = await client.messages.create({ model: "m", max_tokens: 200, messages: [{ role: "user", content: "A city as JSON" }], output_config: { format: { type: "json_schema", schema } } });
    expect(m.stop_reason).toBe("end_turn");
    expect(ajv.validate(schema, JSON.parse(textOf(m)))).toBe(true);
  });

  test("output_format, the structured-outputs beta's spelling (client.beta.messages), holds the answer to its schema too; both at once is a 400", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const m = await client.beta.messages.create({ model: "m", max_tokens: 120, messages: [{ role: "user", content: "Is it fine?" }], output_format: { type: "json_schema", schema }, betas: ["structured-outputs-2025-11-13"] } as never);
    expect(ajv.validate(schema, JSON.parse(textOf(m as never)))).toBe(true);
    const both = await t.post("/v1/messages", { model: "m", max_tokens: 8, messages: [{ role: "user", content: "x" }], output_format: { type: "json_schema", schema }, output_config: { format: { type: "json_schema", schema } } });
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { message: string } }).error.message).toMatch(/output_format/);
  });
});

test("content blocks: each text run and each call a block of its own; whitespace before a call and a call cut short left out", () => {
  const b = new ContentBuilder();
  const out = [
    ...b.add([{ type: "text", text: "Checking." }, { type: "text", text: "\n" }, { type: "call", index: 0, id: "call_a1", name: "get_time" }, { type: "arguments", index: 0, fragment: '{"zone":' }]),
    ...b.add([{ type: "arguments", index: 0, fragment: '"UTC"}' }, { type: "text", text: " \n" }, { type: "call", index: 1, id: "call_b2", name: "get_weather" }]),
    ...b.add([{ type: "arguments", index: 1, fragment: '{"city": "Par' }]), // max_tokens cut it here
    ...b.close(),
  ];
  expect(out.map(([name, d]) => `${name}:${(d as { index: number }).index}`)).toEqual([
    "content_block_start:0", "content_block_delta:0", "content_block_delta:0", "content_block_stop:0",
    "content_block_start:1", "content_block_delta:1", "content_block_delta:1", "content_block_stop:1",
    "content_block_start:2", "content_block_delta:2", "content_block_stop:2",
  ]);
  expect(out[4]![1]).toEqual({ type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_a1", name: "get_time", input: {} } });
  expect(b.content).toEqual([{ type: "text", text: "Checking.\n" }, { type: "tool_use", id: "toolu_a1", name: "get_time", input: { zone: "UTC" } }]);
  // a reply of whitespace alone is still its text
  const space = new ContentBuilder();
  const events = [...space.add([{ type: "text", text: "  " }]), ...space.close()];
  expect(events.map(([name]) => name)).toEqual(["content_block_start", "content_block_delta", "content_block_stop"]);
  expect(space.content).toEqual([{ type: "text", text: "  " }]);
});
