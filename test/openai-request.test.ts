// The whole request (issue #20): refusals that name the rule they apply, OpenAI's code for a context
// overflow, the prompt tokens a generation took from the cache, SESSION_HEADER's default, and the
// build's system_fingerprint. Real engine, synthetic model.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { t as T } from "elysia";
import { loadSettings } from "../src/config.ts";
import type { PromptSpec } from "../src/engine/messages.ts";
import { HttpError } from "../src/http/errors.ts";
import { ChatBody, CompletionBody } from "../src/http/openai/model.ts";
import { openaiContextError } from "../src/http/openai/errors.ts";
import { fingerprintOf, systemFingerprint } from "../src/http/openai/fingerprint.ts";
import { describe as describeSchema, validationRefusal, type SchemaError } from "../src/http/validation-message.ts";
import pkg from "../package.json";
import { startTestApp, uid, withTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(120_000);

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

type OpenAIError = { error: { message: string; type: string; param: string | null; code: string } };
type SeedError = { error: { code: string; message: string; field?: string } };

/** the refusal of `value` under `schema`, as the app words it */
const refusal = (schema: Parameters<typeof Value.Errors>[0], value: unknown) => validationRefusal([...Value.Errors(schema, value)] as SchemaError[]);

const Int = (o: { minimum?: number; maximum?: number } = {}) => T.Number({ ...o, multipleOf: 1 });
const Nullable = <S extends Parameters<typeof T.Optional>[0]>(s: S) => T.Optional(T.Union([s, T.Null()]));
const Body = T.Object({
  prompt: T.String(),
  max_tokens: Nullable(Int({ minimum: 1 })),
  n: Nullable(Int({ minimum: 1, maximum: 16 })),
  temperature: Nullable(T.Number({ minimum: 0, maximum: 2 })),
  top_p: T.Optional(T.Number({ exclusiveMinimum: 0, maximum: 1 })),
  role: T.Optional(T.Union(["system", "developer", "user", "assistant", "tool"].map((r) => T.Literal(r)))),
  name: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
  stream: Nullable(T.Boolean()),
  stop: Nullable(T.Union([T.String(), T.Array(T.String(), { maxItems: 4 })])),
  parts: T.Optional(T.Array(T.Object({ type: T.Literal("text"), text: T.String() }, { additionalProperties: false }))),
  format: T.Optional(T.Union([
    T.Object({ type: T.Literal("text") }, { additionalProperties: false }),
    T.Object({ type: T.Literal("json_schema"), json_schema: T.Object({ name: T.String() }) }, { additionalProperties: false }),
  ])),
}, { additionalProperties: false });

describe("a refused field's message names the rule (validation-message.ts)", () => {
  const cases: [string, Record<string, unknown> | unknown, string, string][] = [
    ["an integer below its minimum", { prompt: "x", max_tokens: 0 }, "max_tokens", "max_tokens must be an integer ≥ 1"],
    ["a fraction for an integer", { prompt: "x", max_tokens: 2.5 }, "max_tokens", "max_tokens must be an integer ≥ 1"],
    ["a string for an integer", { prompt: "x", max_tokens: "5" }, "max_tokens", "max_tokens must be an integer ≥ 1"],
    ["an integer above its range", { prompt: "x", n: 17 }, "n", "n must be an integer between 1 and 16"],
    ["a number out of its range", { prompt: "x", temperature: 3 }, "temperature", "temperature must be a number between 0 and 2"],
    ["an exclusive bound", { prompt: "x", top_p: 0 }, "top_p", "top_p must be a number > 0 and ≤ 1"],
    ["a literal not in the list", { prompt: "x", role: "wizard" }, "role", "role must be one of system, developer, user, assistant, tool"],
    ["a number for a string", { prompt: 5 }, "prompt", "prompt must be a string"],
    ["a string too short", { prompt: "x", name: "" }, "name", "name must be a non-empty string of at most 64 characters"],
    ["a string for a boolean", { prompt: "x", stream: "yes" }, "stream", "stream must be a boolean"],
    ["an unknown field", { prompt: "x", foo: 1 }, "foo", "unknown field foo"],
    ["a missing field", {}, "prompt", "prompt is required"],
    ["the wrong type for a union", { prompt: "x", stop: 5 }, "stop", "stop must be a string or an array of at most 4 strings"],
    ["a list too long inside a union", { prompt: "x", stop: ["a", "b", "c", "d", "e"] }, "stop", "stop must have at most 4 items"],
    ["an item deep inside", { prompt: "x", parts: [{ type: "text", text: "ok" }, { type: "image", text: "x" }] }, "parts[1].type", "parts[1].type must be text"],
    ["an unknown field deep inside", { prompt: "x", parts: [{ type: "text", text: "ok", extra: 1 }] }, "parts[0].extra", "unknown field parts[0].extra"],
    ["an unknown tag of tagged objects", { prompt: "x", format: { type: "xml" } }, "format.type", "format.type must be one of text, json_schema"],
    ["a field of the tagged variant", { prompt: "x", format: { type: "json_schema", json_schema: {} } }, "format.json_schema.name", "format.json_schema.name is required"],
    ["the whole value", [1, 2], "", "request body must be an object"],
  ];
  for (const [what, value, field, message] of cases) {
    test(what, () => {
      expect(refusal(Body, value)).toEqual({ field, message });
    });
  }

  test("the OpenAI routes' own schemas: a chat role, a response_format tag, integers, a prompt list", () => {
    const chat = (extra: Record<string, unknown>, message: Record<string, unknown> = { role: "user", content: "Hi" }) => refusal(ChatBody, { messages: [message], ...extra });
    expect(chat({}, { role: "wizard", content: "x" }).message).toMatch(/^messages\[0\]\.role must be one of system, developer, user, assistant\b/);
    expect(chat({ n: 0 })).toEqual({ field: "n", message: "n must be an integer between 1 and 16" });
    expect(chat({ response_format: { type: "yaml" } })).toEqual({ field: "response_format.type", message: "response_format.type must be one of text, json_object, json_schema" });
    expect(chat({ max_completion_tokens: -1 })).toEqual({ field: "max_completion_tokens", message: "max_completion_tokens must be an integer ≥ 1" });
    expect(refusal(CompletionBody, { prompt: [] })).toEqual({ field: "prompt", message: "prompt must not be empty" });
    expect(refusal(CompletionBody, { prompt: "x", logprobs: 9 })).toEqual({ field: "logprobs", message: "logprobs must be an integer between 0 and 5" });
  });

  test("a schema typebox cannot check by itself (plain JSON Schema) is still described", () => {
    const plain = { type: "integer", minimum: 0, maximum: 9 } as never;
    expect(describeSchema(plain)).toBe("an integer between 0 and 9");
    expect(validationRefusal([{ type: 62, path: "/k", schema: { anyOf: [plain, { type: "null" }] } as never, value: "x" }])).toEqual({ field: "k", message: "k must be an integer between 0 and 9" });
    expect(validationRefusal([])).toEqual({ field: "", message: "request body is invalid" });
  });
});

describe("refusals through the app keep each route family's shape and status", () => {
  test("/v1: 400, OpenAI's shape, the rule in the message, the field in param", async () => {
    const cases: [string, Record<string, unknown>, string, string | RegExp][] = [
      ["/v1/completions", { prompt: "x", max_tokens: 0 }, "max_tokens", "max_tokens must be an integer ≥ 1"],
      ["/v1/completions", { prompt: "x", temperature: 2.5 }, "temperature", "temperature must be a number between 0 and 2"],
      ["/v1/chat/completions", { messages: [{ role: "wizard", content: "x" }] }, "messages[0].role", /^messages\[0\]\.role must be one of system, developer, user, assistant\b/],
      ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], frobnicate: 1 }, "frobnicate", "unknown field frobnicate"],
      ["/v1/chat/completions", { messages: [] }, "messages", "messages must not be empty"],
    ];
    for (const [path, body, param, message] of cases) {
      const r = await app.post(path, body);
      expect(r.status).toBe(400);
      const { error } = (await r.json()) as OpenAIError;
      expect(error).toMatchObject({ type: "invalid_request_error", param, code: "invalid_field" });
      expect(error.message).toMatch(typeof message === "string" ? new RegExp(`^${esc(message)}$`) : message);
    }
  });

  test("the seed API: 422, its own shape, the rule in the message, the field in field", async () => {
    const cases: [string, Record<string, unknown>, string, string][] = [
      ["/api/generate-one", { request_id: "a", prompt: "x", generation_config: { max_new_tokens: 0 } }, "generation_config.max_new_tokens", "generation_config.max_new_tokens must be an integer ≥ 1"],
      ["/api/generate-one", { request_id: "", prompt: "x" }, "request_id", "request_id must be a non-empty string of at most 512 characters"],
      ["/api/generate-one", { request_id: "a", prompt: "x", generation_config: { do_sample: 1 } }, "generation_config.do_sample", "generation_config.do_sample must be a boolean"],
      ["/api/generate-one", { request_id: "a", prompt: "x", colour: "red" }, "colour", "unknown field colour"],
      ["/api/generate-batch", { prompts: [{ request_id: "a" }] }, "prompts[0].prompt", "prompts[0].prompt is required"],
    ];
    for (const [path, body, field, message] of cases) {
      const r = await app.post(path, body);
      expect(r.status).toBe(422);
      expect((await r.json()) as SeedError).toEqual({ error: { code: "invalid_field", message, field } });
    }
    const q = await app.app.handle(new Request("http://local/api/cache?bogus=1"));
    expect(q.status).toBe(422);
    expect((await q.json()) as SeedError).toEqual({ error: { code: "invalid_field", message: "unknown field bogus", field: "bogus" } });
  });
});

describe("a context overflow on /v1 is OpenAI's context_length_exceeded (openai/errors.ts)", () => {
  /** the seed API's own refusal of a prompt that does not fit (the engine's, or the config check's) */
  const seedRefusal = async (body: Record<string, unknown>): Promise<HttpError> => {
    const r = await app.post("/api/generate-one", { request_id: uid("overflow"), stream_response: false, ...body });
    expect(r.status).toBe(422);
    const { error } = (await r.json()) as SeedError;
    expect(error.code).toBe("context_exceeded"); // the seed API's contract is unchanged
    return new HttpError(r.status, error.code, error.message, error.field);
  };

  test("the engine's refusal of a long prompt: code, param per route, status 400", async () => {
    const long = "word ".repeat(600); // over CTX_SIZE 512
    const err = await seedRefusal({ prompt: long, generation_config: { max_new_tokens: 4 } });
    expect(err.field).toBe("prompt");
    for (const [route, param] of [["chat", "messages"], ["completions", "prompt"]] as const) {
      const res = openaiContextError(err, route).toResponse("openai");
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as OpenAIError;
      expect(error).toMatchObject({ type: "invalid_request_error", param, code: "context_length_exceeded" });
      expect(error.message).toMatch(/> CTX_SIZE 512/);
      expect(error.message).not.toContain("max_new_tokens");
    }
    expect(openaiContextError(err, "chat").message).toMatch(/^the messages have \d+ tokens/);
  });

  test("max_tokens past the context, and a continued session that no longer fits, are overflows too", async () => {
    const big = await seedRefusal({ prompt: "Hi", generation_config: { max_new_tokens: 100000 } });
    expect(big.field).toBe("generation_config.max_new_tokens");
    const out = openaiContextError(big, "completions");
    expect([out.code, out.field, out.message]).toEqual(["context_length_exceeded", "prompt", "max_tokens 100000 > CTX_SIZE 512"]);
    const other = new HttpError(422, "too_many_beams", "num_beams 9 > MAX_BEAMS 8", "num_beams");
    expect(openaiContextError(other, "chat")).toBe(other); // anything else passes unchanged
  });

  test("today's /v1 overflow is already a 400 (OpenAI has no 422)", async () => {
    const r = await app.post("/v1/completions", { prompt: "word ".repeat(600), max_tokens: 4 });
    expect(r.status).toBe(400);
    expect(((await r.json()) as OpenAIError).error.type).toBe("invalid_request_error");
  });
});

describe("the prompt tokens a generation took from the cache (done's `cached`)", () => {
  type Done = { promptTokens: number; cached: number; generated: number };
  const config = () => ({ ...app.settings.defaults, do_sample: false, max_new_tokens: 3, num_beams: 1 });
  /** submits through the engine client; each item's done() arguments */
  const run = (items: PromptSpec[], cfg: ReturnType<typeof config> = config()) => new Promise<Done[]>((resolve, reject) => {
    const out: Done[] = [];
    let open = items.length;
    app.engine.submit(items, true, cfg, {
      accepted() {},
      text() {},
      done(index, _reason, generated, _length, promptTokens, cached) {
        out[index] = { promptTokens, cached, generated };
        if (--open === 0) resolve(out);
      },
      error: (e) => reject(new Error(e.message)),
    });
  });
  // each test's prompts begin with their own random text: no test reuses another's cached prefix
  const prompt = () => `${crypto.randomUUID()} The lighthouse keeper counted the ships that passed the rocky northern cape every night`;

  test("a new prompt decodes everything; the same prompt again (one-off, as /v1 without request_id) reuses its cells", async () => {
    const text = prompt();
    const [first] = await run([{ requestId: uid("oneoff"), prompt: text, ephemeral: true }]);
    expect(first!.promptTokens).toBeGreaterThan(16);
    expect(first!.cached).toBe(0);
    const [second] = await run([{ requestId: uid("oneoff"), prompt: text, ephemeral: true }]);
    expect(second!.promptTokens).toBe(first!.promptTokens);
    expect(second!.cached).toBeGreaterThan(0);
    expect(second!.cached).toBeLessThan(second!.promptTokens); // at least the last token is decoded again, for its logits
  });

  test("a continued session reports the cells it kept; a batch reports each item's own", async () => {
    const id = uid("session");
    const [first] = await run([{ requestId: id, prompt: prompt() }]);
    expect(first!.cached).toBe(0);
    const [next] = await run([{ requestId: id, prompt: "" }]);
    // the session's tokens are this generation's prompt: all in the cache but the last one sampled
    expect(next!.promptTokens).toBe(first!.promptTokens + first!.generated);
    expect(next!.cached).toBe(next!.promptTokens - 1);
    const both = await run([{ requestId: id, prompt: "" }, { requestId: uid("fresh"), prompt: prompt() }]);
    expect(both[0]!.cached).toBe(both[0]!.promptTokens - 1);
    expect(both[1]!.cached).toBe(0);
  });

  test("beam search too: a beam job's cached is what its sequence held at its first feed", async () => {
    const id = uid("beams");
    const [first] = await run([{ requestId: id, prompt: prompt() }], { ...config(), num_beams: 2 });
    expect(first!.cached).toBe(0);
    const [next] = await run([{ requestId: id, prompt: "" }], { ...config(), num_beams: 2 });
    expect(next!.promptTokens).toBe(first!.promptTokens + first!.generated);
    expect(next!.cached).toBeGreaterThan(first!.promptTokens - 1); // the session's cells, not only its prompt's
    expect(next!.cached).toBeLessThan(next!.promptTokens);
  });
});

describe("SESSION_HEADER names no header by default", () => {
  test("the default is none, and an x-request-id on /v1 makes no session (n: 2 works)", async () => {
    expect(loadSettings({}).sessionHeader).toBe("");
    expect(app.settings.sessionHeader).toBe("");
    const id = uid("xrid");
    const r = await app.post("/v1/completions", { prompt: "Hello", max_tokens: 2, n: 2, temperature: 0 }, { headers: { "x-request-id": id } });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { choices: unknown[] }).choices).toHaveLength(2);
    expect((await app.app.handle(new Request(`http://local/api/cache/${id}`))).status).toBe(404);
  });

  test("SESSION_HEADER=x-session-id: that header names the session (and so takes n = 1 only)", async () => {
    await withTestApp({ SESSION_HEADER: "x-session-id" }, async (s) => {
      const id = uid("xsid");
      const headers = { "x-session-id": id };
      const r = await s.post("/v1/completions", { prompt: "Hello", max_tokens: 2, temperature: 0 }, { headers });
      expect(r.status).toBe(200);
      await r.text();
      expect((await s.app.handle(new Request(`http://local/api/cache/${id}`))).status).toBe(200);
      const two = await s.post("/v1/completions", { prompt: "Hello", max_tokens: 2, n: 2 }, { headers });
      expect(two.status).toBe(400);
      expect(((await two.json()) as OpenAIError).error.param).toBe("request_id");
      // x-request-id means nothing here either
      const other = await s.post("/v1/completions", { prompt: "Hello", max_tokens: 2, n: 2 }, { headers: { "x-request-id": uid() } });
      expect(other.status).toBe(200);
      await other.text();
    });
  });
});

describe("system_fingerprint (openai/fingerprint.ts)", () => {
  test("names llama.cpp's build, the backend and the package version; stable for one server", () => {
    const fp = systemFingerprint(app.engine.model);
    expect(fp).toBe(systemFingerprint({ gpuOffload: app.engine.model!.gpuOffload }));
    expect(fp).toMatch(new RegExp(`^b[0-9a-z+]{6,}-(cpu|cuda)-${esc(pkg.version)}$`));
    expect(systemFingerprint()).toMatch(/-cpu-/); // without the engine's facts: the CPU library's
  });

  test("changes when the build does", () => {
    const base = { llama: "de3ff815ea7d", backend: "cpu", version: "0.1.0" } as const;
    const fps = new Set([
      fingerprintOf(base), fingerprintOf({ ...base, llama: "0123456789ab" }), fingerprintOf({ ...base, llama: "de3ff815ea7d+p1a2b" }),
      fingerprintOf({ ...base, backend: "cuda" }), fingerprintOf({ ...base, version: "0.2.0" }),
    ]);
    expect(fps.size).toBe(5);
    expect(fingerprintOf(base)).toBe("bde3ff815ea7d-cpu-0.1.0");
  });
});
