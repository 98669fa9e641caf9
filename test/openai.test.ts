// The OpenAI-compatible routes on the real engine, driven by the official `openai` npm package.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import { ensureModel } from "../src/gguf/models.ts";
import { promptTokens } from "../src/engine/requests.ts";
import { ChatTemplate, DEFAULT_CHAT_TEMPLATE } from "../src/conversation/chat-template.ts";
import { Model } from "../src/native/index.ts";
import { startTestApp, withTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(60_000);

let t: TestApp;
let client: OpenAI;
let vocab: Model;
beforeAll(async () => {
  t = await startTestApp();
  vocab = Model.load(await ensureModel("tiny"), { vocabOnly: true });
  client = new OpenAI({ baseURL: "http://local/v1", apiKey: "unused", maxRetries: 0, fetch: (url, init) => t.app.handle(new Request(url as string, init as RequestInit)) });
});
afterAll(async () => {
  vocab?.free();
  await t?.close();
});

const PROMPT = "Once upon a time there was";
const greedy = { temperature: 0 } as const;

describe("/v1/models", () => {
  test("lists the served model; its id is echoed whatever model a request names", async () => {
    const list = await client.models.list();
    expect(list.data).toHaveLength(1);
    const id = list.data[0]!.id;
    expect(id).toStartWith("tiny");
    expect((await client.models.retrieve(id)).id).toBe(id);
    const c = await client.completions.create({ model: "gpt-4o", prompt: "Hi", max_tokens: 2, ...greedy });
    expect(c.model).toBe(id);
  });
});

describe("/v1/completions", () => {
  test("greedy text equals the seed API's for the same prompt; usage counts are exact", async () => {
    const c = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 12, ...greedy });
    expect(c.object).toBe("text_completion");
    expect(c.choices[0]!.text).toBe(await t.generate(`seed-${Date.now()}`, PROMPT, { max_new_tokens: 12 }));
    expect(c.choices[0]!.finish_reason).toBe("length");
    const promptTokens = vocab.tokenize(PROMPT, true, true).length;
    expect(c.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 12, total_tokens: promptTokens + 12, prompt_tokens_details: { cached_tokens: expect.any(Number) } });
    // at least the last prompt token is decoded again, whatever the cache held
    expect(c.usage!.prompt_tokens_details!.cached_tokens).toBeLessThan(promptTokens);
  });

  test("streamed: the deltas make the same text, one chunk carries finish_reason, and the usage chunk comes last", async () => {
    const whole = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 10, ...greedy });
    const stream = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 10, ...greedy, stream: true, stream_options: { include_usage: true } });
    let text = "";
    const finishes: (string | null)[] = [];
    let last: OpenAI.Completions.Completion | null = null;
    for await (const chunk of stream) {
      last = chunk;
      for (const ch of chunk.choices) (text += ch.text), finishes.push(ch.finish_reason);
    }
    expect(text).toBe(whole.choices[0]!.text);
    expect(finishes.filter((f) => f !== null)).toEqual(["length"]);
    expect(last!.choices).toEqual([]);
    expect(last!.usage).toEqual(whole.usage);
  });

  test("a stop string split across two tokens ends the text before it, finish_reason stop", async () => {
    const deltas: string[] = [];
    for await (const chunk of await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 24, ...greedy, stream: true })) {
      for (const ch of chunk.choices) if (ch.text) deltas.push(ch.text);
    }
    const full = deltas.join("");
    const i = deltas.findIndex((d, k) => k > 2 && deltas[k + 1] !== undefined);
    const stop = deltas[i]!.slice(-1) + deltas[i + 1]!.slice(0, 1); // the end of one token, the start of the next
    const c = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 24, ...greedy, stop: [stop, "never-appears-xyz"] });
    expect(c.choices[0]!.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(c.choices[0]!.finish_reason).toBe("stop");
    expect(c.usage!.completion_tokens).toBeLessThan(24);
  });

  test("n: 2 gives two choices; greedy ones agree, and prompt tokens are counted once", async () => {
    const c = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 6, n: 2, ...greedy });
    expect(c.choices.map((ch) => ch.index)).toEqual([0, 1]);
    expect(c.choices[0]!.text).toBe(c.choices[1]!.text);
    expect(c.usage!.prompt_tokens).toBe(vocab.tokenize(PROMPT, true, true).length);
    expect(c.usage!.completion_tokens).toBe(12);
  });

  // (without prefix reuse: a reused prefix decodes the prompt's last token in another batch shape,
  // whose float rounding can move a draw of this flat random model; see the README)
  test("n: 3 sampled with a seed: the choices differ from each other and repeat exactly", async () => {
    await withTestApp({ PREFIX_REUSE_MIN_TOKENS: "0" }, async (a) => {
      const ask = async () => ((await (await a.post("/v1/completions", { prompt: PROMPT, max_tokens: 8, n: 3, temperature: 1.5, seed: 5 })).json()) as { choices: { text: string }[] }).choices.map((c) => c.text);
      const first = await ask();
      expect(new Set(first).size).toBeGreaterThan(1);
      expect(await ask()).toEqual(first);
    });
  });

  test("one-off requests leave no session behind; request_id continues a session as on the seed API", async () => {
    const before = ((await (await t.app.handle(new Request("http://local/api/cache?limit=1000"))).json()) as { sessions: unknown[] }).sessions.length;
    await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 3, ...greedy });
    const after = ((await (await t.app.handle(new Request("http://local/api/cache?limit=1000"))).json()) as { sessions: unknown[] }).sessions.length;
    expect(after).toBe(before);
    const id = `v1-session-${Date.now()}`;
    const first = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 4, ...greedy, request_id: id } as OpenAI.CompletionCreateParamsNonStreaming);
    const next = await client.completions.create({ model: "m", prompt: "", max_tokens: 4, ...greedy, request_id: id } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(first.choices[0]!.text + next.choices[0]!.text).toBe(await t.generate(`seed-${Date.now()}`, PROMPT, { max_new_tokens: 8 }));
  });
});

describe("logprobs, logit_bias and penalties", () => {
  test("completions logprobs: tokens make the text, each <= 0, greedy's token is its own best alternative", async () => {
    const c = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 8, logprobs: 3, ...greedy });
    const lp = c.choices[0]!.logprobs!;
    expect(lp.tokens!.join("")).toBe(c.choices[0]!.text);
    expect(lp.token_logprobs!.every((v) => v <= 0)).toBe(true);
    lp.top_logprobs!.forEach((top, k) => {
      const entries = Object.entries(top!);
      expect(entries.length).toBeGreaterThanOrEqual(1);
      expect(entries.length).toBeLessThanOrEqual(3);
      expect(Math.max(...entries.map(([, v]) => v))).toBeCloseTo(lp.token_logprobs![k]!, 5);
    });
    expect(lp.text_offset![1]).toBe(lp.tokens![0]!.length);
  });

  test("chat logprobs with top_logprobs, streamed and not, agree with the text", async () => {
    const messages = [{ role: "user" as const, content: "Tell me a story" }];
    const c = await client.chat.completions.create({ model: "m", messages, max_tokens: 6, logprobs: true, top_logprobs: 2, ...greedy });
    const content = c.choices[0]!.logprobs!.content!;
    expect(content.map((e) => e.token).join("")).toBe(c.choices[0]!.message.content!);
    expect(content.every((e) => e.logprob <= 0 && e.top_logprobs.length === 2 && e.top_logprobs[0]!.logprob >= e.top_logprobs[1]!.logprob)).toBe(true);
    let streamed = 0;
    for await (const chunk of await client.chat.completions.create({ model: "m", messages, max_tokens: 6, logprobs: true, ...greedy, stream: true })) {
      streamed += chunk.choices[0]?.logprobs?.content?.length ?? 0;
    }
    expect(streamed).toBe(content.length);
  });

  const tokensOf = async (extra: Record<string, unknown>) => {
    const c = await client.completions.create({ model: "m", prompt: PROMPT, max_tokens: 10, logprobs: 0, ...greedy, ...extra });
    return c.choices[0]!.logprobs!.tokens!;
  };
  // (the penalties' arithmetic is tested on rows in sampling-openai.test.ts: this random model's
  // logits are too peaked for OpenAI's range of -2..2 to move its greedy choice predictably)
  test("logit_bias: +100 makes greedy repeat a token; -100 bans greedy's own first choice", async () => {
    const id = vocab.tokenize(" the", false, false).at(-1)!;
    const piece = new TextDecoder().decode(vocab.tokenPiece(id));
    expect(await tokensOf({ logit_bias: { [id]: 100 } })).toEqual(Array(10).fill(piece));
    const plain = await tokensOf({});
    const first = vocab.tokenize(PROMPT + plain[0], true, false).at(-1)!;
    const banned = await tokensOf({ logit_bias: { [first]: -100 } });
    expect(banned[0]).not.toBe(plain[0]);
  });

  test("presence and frequency penalties are accepted in OpenAI's range and give deterministic greedy text", async () => {
    const a = await tokensOf({ presence_penalty: 2, frequency_penalty: 2 });
    expect(a).toHaveLength(10);
    expect(await tokensOf({ presence_penalty: 2, frequency_penalty: 2 })).toEqual(a);
    expect((await t.post("/v1/completions", { prompt: "x", presence_penalty: 2.5 })).status).toBe(400);
  });

  test("these need plain sampling: with num_beams > 1 they are a 400", async () => {
    const r = await t.post("/v1/completions", { prompt: "x", num_beams: 2, presence_penalty: 1 });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { param: string } }).error.param).toBe("presence_penalty");
  });
});

describe("/v1/chat/completions", () => {
  test("non-streamed and streamed chat agree; the stream starts with the role and ends with [DONE]", async () => {
    const messages = [{ role: "system" as const, content: "Be brief." }, { role: "user" as const, content: "Hello there" }];
    const whole = await client.chat.completions.create({ model: "m", messages, max_tokens: 8, ...greedy });
    expect(whole.object).toBe("chat.completion");
    expect(whole.choices[0]!.message.role).toBe("assistant");
    // the tiny model has no template of its own: ChatML, tokenized piece by piece
    const rendered = new ChatTemplate(DEFAULT_CHAT_TEMPLATE, { bosText: "<s>", eosText: "</s>", controlTokens: vocab.controlTokens() }).pieces(messages);
    expect(rendered.prompt).toBe("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n");
    expect(whole.usage!.prompt_tokens).toBe(promptTokens(vocab, { requestId: "", ...rendered }, true).length);
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({ model: "m", messages, max_tokens: 8, ...greedy, stream: true })) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(whole.choices[0]!.message.content!);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("length");
  });

  test("a raw stream is SSE: data lines, then data: [DONE]", async () => {
    const r = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 3, temperature: 0, stream: true });
    expect(r.headers.get("content-type")).toStartWith("text/event-stream");
    const text = await r.text();
    const events = text.split("\n\n").filter(Boolean);
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.at(-1)).toBe("data: [DONE]");
  });
});

describe("errors on /v1 take OpenAI's shape", () => {
  const bad: [string, string, Record<string, unknown>, string | null][] = [
    ["a string for an integer", "/v1/completions", { prompt: "x", max_tokens: "5" }, "max_tokens"],
    ["temperature out of range", "/v1/completions", { prompt: "x", temperature: 3 }, "temperature"],
    ["logprobs out of range", "/v1/completions", { prompt: "x", logprobs: 6 }, "logprobs"],
    ["a huge stop list", "/v1/completions", { prompt: "x", stop: Array.from({ length: 500 }, (_, i) => `s${i}`) }, "stop"],
    ["logit_bias outside the vocabulary", "/v1/completions", { prompt: "x", logit_bias: { "99999999": 5 } }, "logit_bias"],
    ["empty messages", "/v1/chat/completions", { messages: [] }, "messages"],
    ["an unknown role", "/v1/chat/completions", { messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
    ["an unknown field", "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], frobnicate: 1 }, null],
    ["a prompt that does not fit", "/v1/completions", { prompt: "x", max_tokens: 100000 }, "max_tokens"],
  ];
  for (const [what, path, body, param] of bad) {
    test(`${what}: 400 with error.message/type/param/code`, async () => {
      const r = await t.post(path, body);
      expect(r.status).toBe(400);
      const { error } = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string } };
      expect(error.type).toBe("invalid_request_error");
      expect(error.message.length).toBeGreaterThan(0);
      if (param) expect(error.param ?? "").toStartWith(param);
      expect(typeof error.code).toBe("string");
    });
  }

  test("the SDK raises its BadRequestError, and the server stays healthy", async () => {
    const err = await client.chat.completions.create({ model: "m", messages: [] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages");
    expect((await t.app.handle(new Request("http://local/health"))).status).toBe(200);
    expect((await t.app.handle(new Request("http://local/v1/nope"))).status).toBe(404);
  });
});

describe("/openapi", () => {
  test("describes every route, seed and /v1, with the request schemas that validate them", async () => {
    const spec = (await (await t.app.handle(new Request("http://local/openapi/json"))).json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: object } }> } }>> };
    for (const [path, method] of [["/health", "get"], ["/api/generate-one", "post"], ["/api/generate-batch", "post"], ["/api/cache/{request_id}", "delete"], ["/v1/models", "get"], ["/v1/completions", "post"], ["/v1/chat/completions", "post"], ["/metrics", "get"]] as const) {
      expect(spec.paths[path]?.[method]).toBeDefined();
    }
    const chat = spec.paths["/v1/chat/completions"]!.post!.requestBody!.content["application/json"]!.schema;
    expect(Object.keys(chat.properties)).toContain("messages");
    const seed = spec.paths["/api/generate-one"]!.post!.requestBody!.content["application/json"]!.schema;
    expect(Object.keys(seed.properties)).toEqual(["request_id", "prompt", "only_new_tokens", "stream_response", "generation_config"]);
    const page = await t.app.handle(new Request("http://local/openapi"));
    expect(page.headers.get("content-type")).toContain("text/html");
  });
});
