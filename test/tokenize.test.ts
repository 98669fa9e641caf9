// llama-server's /tokenize and /detokenize on the served model's vocabulary: round trips of ASCII and
// multi-byte text on SentencePiece and BPE vocabularies (synthetic models) and on SmolLM2 (real),
// with_pieces (text, or bytes where a piece is part of a character), add_special, parse_special,
// the mixed content form, the engine's own count, and refusals in the seed API's shape.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import type { PresetName } from "../src/gguf/models.ts";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(240_000);

const TEXTS = ["Hello world", "naïve café, Straße — ünïcödé", "日本語のテキストと中文", "emoji 🙂🎉 and 𝔘𝔫𝔦", "  two spaces,\ttab\nnewline\r\n", "a <b>tag</b> & {\"json\": [1, 2]}"];

type Piece = string | number[];
const bytesOf = (p: Piece) => (typeof p === "string" ? new TextEncoder().encode(p) : Uint8Array.from(p));

async function json<T>(r: Response): Promise<T> {
  expect(r.status).toBe(200);
  return (await r.json()) as T;
}

const tokenize = async (t: TestApp, body: Record<string, unknown>) => (await json<{ tokens: number[] }>(await t.post("/tokenize", body))).tokens;
const withPieces = async (t: TestApp, body: Record<string, unknown>) =>
  (await json<{ tokens: { id: number; piece: Piece }[] }>(await t.post("/tokenize", { ...body, with_pieces: true }))).tokens;
const detokenize = async (t: TestApp, tokens: number[]) => (await json<{ content: string }>(await t.post("/detokenize", { tokens }))).content;

/** what every vocabulary must do: round trips, pieces that add up to the text, ids in range */
async function roundTrips(t: TestApp, spacePrefix: boolean) {
  for (const text of TEXTS) {
    const ids = await tokenize(t, { content: text });
    expect(ids.length).toBeGreaterThan(0);
    // as llama-server: a SentencePiece vocabulary's added leading space stays in the pieces' text
    expect(await detokenize(t, ids)).toBe(spacePrefix ? ` ${text}` : text);
    const pieces = await withPieces(t, { content: text });
    expect(pieces.map((p) => p.id)).toEqual(ids);
    // each piece is text when its bytes are valid UTF-8, else those bytes; together they are the text's bytes
    const all = Buffer.concat(pieces.map((p) => bytesOf(p.piece)));
    expect(all.toString("utf8")).toBe(spacePrefix ? ` ${text}` : text);
    for (const p of pieces) {
      if (Array.isArray(p.piece)) {
        expect(() => new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(p.piece as number[]))).toThrow();
        for (const b of p.piece) expect(b >= 0 && b <= 255).toBe(true);
      }
    }
  }
}

const PRESETS: { preset: PresetName; spacePrefix: boolean; bos: boolean }[] = [
  { preset: "tiny", spacePrefix: true, bos: true }, // llama SentencePiece
  { preset: "tiny-bpe", spacePrefix: false, bos: true }, // llama-3 BPE
  { preset: "tiny-gpt2", spacePrefix: false, bos: false }, // GPT-2 BPE
  { preset: "tiny-qwen2", spacePrefix: false, bos: false }, // Qwen2 BPE
];

describe.each(PRESETS)("synthetic $preset vocabulary", ({ preset, spacePrefix, bos }) => {
  let t: TestApp;
  beforeAll(async () => void (t = await startTestApp({ CTX_SIZE: "256", PARALLEL: "1" }, preset)), 300_000);
  afterAll(() => t?.close());

  test("tokenize → detokenize round trips of ASCII and multi-byte text; with_pieces adds up to the same bytes", async () => {
    await roundTrips(t, spacePrefix);
  });

  test("add_special (default false) adds the model's BOS as its tokenizer does; the piece renders it", async () => {
    const plain = await tokenize(t, { content: "Hello" });
    const special = await withPieces(t, { content: "Hello", add_special: true });
    if (!bos) return expect(special.map((p) => p.id)).toEqual(plain);
    expect(special).toHaveLength(plain.length + 1);
    expect(special.slice(1).map((p) => p.id)).toEqual(plain);
    expect(typeof special[0]!.piece).toBe("string");
    expect((special[0]!.piece as string).length).toBeGreaterThan(0);
    expect(await detokenize(t, special.map((p) => p.id))).toStartWith(special[0]!.piece as string);
  });
});

describe("llama SentencePiece specifics (tiny)", () => {
  let t: TestApp;
  beforeAll(async () => void (t = await startTestApp({ CTX_SIZE: "256", PARALLEL: "1" })), 300_000);
  afterAll(() => t?.close());

  test("a character the vocabulary lacks falls back to bytes: its pieces are byte arrays, llama-server's way", async () => {
    const pieces = await withPieces(t, { content: "🙂" });
    expect(pieces.filter((p) => Array.isArray(p.piece)).map((p) => p.piece)).toEqual([[0xf0], [0x9f], [0x99], [0x82]]);
  });

  test("parse_special (default true) reads control-token text as the token; false keeps it text", async () => {
    const parsed = await tokenize(t, { content: "<s>Hi" });
    expect(parsed[0]).toBe(1);
    const literal = await tokenize(t, { content: "<s>Hi", parse_special: false });
    expect(literal).not.toContain(1);
    expect(literal.length).toBeGreaterThan(parsed.length);
    expect(await detokenize(t, [1, ...parsed.slice(1)])).toStartWith("<s>");
  });

  test("content as llama-server's mixed form: strings and token ids in order, BOS only before a first string", async () => {
    const hello = await tokenize(t, { content: "Hello" });
    const world = await tokenize(t, { content: " world" });
    expect(await tokenize(t, { content: ["Hello", 2, " world"], add_special: true })).toEqual([1, ...hello, 2, ...world]);
    expect(await tokenize(t, { content: [2, "Hello"], add_special: true })).toEqual([2, ...hello]);
  });

  test("/openapi/json lists both routes", async () => {
    const spec = (await (await t.app.handle(new Request("http://local/openapi/json"))).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(spec.paths["/tokenize"]?.post).toBeDefined();
    expect(spec.paths["/detokenize"]?.post).toBeDefined();
  });

  const refusals: [string, string, unknown, string, string][] = [
    ["a token id past the vocabulary", "/detokenize", { tokens: [1, 32000] }, "tokens[1]", "not a token id of this model (0..31999)"],
    ["a negative token id", "/detokenize", { tokens: [-1] }, "tokens[0]", "tokens[0] must be an integer between 0 and"],
    ["a token id that is no integer", "/detokenize", { tokens: [1.5] }, "tokens[0]", "an integer"],
    ["tokens missing", "/detokenize", {}, "tokens", "tokens is required"],
    ["a token id past the vocabulary in mixed content", "/tokenize", { content: ["a", 99999] }, "content[1]", "not a token id of this model"],
    ["content missing", "/tokenize", { add_special: true }, "content", "content is required"],
    ["content of the wrong type", "/tokenize", { content: 5 }, "content", "content must be"],
    ["a flag that is no boolean", "/tokenize", { content: "a", with_pieces: "yes" }, "with_pieces", "with_pieces must be a boolean"],
    ["an unknown field", "/tokenize", { content: "a", special: true }, "special", "unknown field special"],
    ["content with a lone surrogate", "/tokenize", '{"content": "a\\ud800b"}', "content", "not well-formed Unicode"],
  ];
  test.each(refusals)("%s: 422 in the seed API's shape, naming the field", async (_name, path, body, field, words) => {
    const r = await t.post(path, body);
    expect(r.status).toBe(422);
    const j = (await r.json()) as { error: { code: string; message: string; field: string } };
    expect(j.error.field).toBe(field);
    expect(j.error.message).toContain(words);
    expect(typeof j.error.code).toBe("string");
  });

  test("an unparseable body is a 400, GET a 405, both in the seed shape", async () => {
    const r = await t.post("/tokenize", "{nope");
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
    const get = await t.app.handle(new Request("http://local/detokenize"));
    expect(get.status).toBe(405);
    expect(((await get.json()) as { error: { code: string } }).error.code).toBe("method_not_allowed");
  });
});

describe("SmolLM2-135M-Instruct (a real GPT-2-style vocabulary and ChatML)", () => {
  let t: TestApp;
  beforeAll(async () => void (t = await startTestApp({ MODEL_PATH: await ensureDefaultModel(), CTX_SIZE: "512", PARALLEL: "1" })), 600_000);
  afterAll(() => t?.close());

  test("round trips, and real words are single tokens", async () => {
    await roundTrips(t, false);
    const pieces = await withPieces(t, { content: "Hello world" });
    expect(pieces.map((p) => p.piece)).toEqual(["Hello", " world"]);
  });

  test("ChatML's control tokens are single tokens unless parse_special is false", async () => {
    const parsed = await withPieces(t, { content: "<|im_start|>user" });
    expect(parsed[0]!.piece).toBe("<|im_start|>");
    expect(await tokenize(t, { content: "<|im_start|>user", parse_special: false })).not.toContain(parsed[0]!.id);
  });

  test("the count is the engine's: /v1/completions' prompt_tokens equal /tokenize with add_special", async () => {
    const prompt = "Tokens are counted the same way everywhere: ünïcödé 🙂";
    const r = await t.post("/v1/completions", { prompt, max_tokens: 1, temperature: 0 });
    const usage = ((await r.json()) as { usage: { prompt_tokens: number } }).usage;
    expect(usage.prompt_tokens).toBe((await tokenize(t, { content: prompt, add_special: true })).length);
  });
});
