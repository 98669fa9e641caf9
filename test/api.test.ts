// The seed API through HTTP on the real engine (tiny synthetic model).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Model } from "../src/native/index.ts";
import { startTestApp, uid, type TestApp } from "./helpers/app.ts";
import { greedyAlone } from "./helpers/greedy.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

let t: TestApp;
let model: Model;
beforeAll(async () => {
  t = await startTestApp();
  model = Model.load(t.settings.modelPath!);
});
afterAll(() => {
  t?.close();
  model?.free();
});

const PROMPT = "[INST] Generate a very long poem about 1000 cats [/INST]\n\n";

async function readChunks(res: Response): Promise<string[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const chunks: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(dec.decode(value, { stream: true }));
  }
  return chunks;
}

describe("health", () => {
  test("reports the model once loaded; load progress came through shared memory", async () => {
    const r = await t.app.handle(new Request("http://local/health"));
    expect(r.status).toBe(200);
    expect(((await r.json()) as { model: { nVocab: number } }).model.nVocab).toBe(32000);
    expect(t.engine.loadProgress).toBe(1);
  });
});

describe("generate-one", () => {
  test("greedy output equals the llama.cpp reference loop", async () => {
    const ids = model.tokenize(PROMPT, true, true);
    const ref = greedyAlone(model, ids, 24, { flashAttn: t.engine.model!.attention.flashAttn });
    const text = await t.generate(uid(), PROMPT, { max_new_tokens: 24 });
    expect(text).toBe(model.piecesText(ref));
  });

  test("streaming arrives in several chunks and equals the non-streamed text", async () => {
    const res = await t.post("/api/generate-one", { request_id: uid(), prompt: PROMPT, generation_config: { do_sample: false, max_new_tokens: 20 } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    const chunks = await readChunks(res);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.join("")).toBe(await t.generate(uid(), PROMPT, { max_new_tokens: 20 }));
  });

  test("only_new_tokens false returns the prompt as the model saw it, then the text", async () => {
    const id = uid();
    const full = await t.generate(id, PROMPT, { max_new_tokens: 8 }, { only_new_tokens: false });
    const fresh = await t.generate(uid(), PROMPT, { max_new_tokens: 8 });
    expect(full).toBe(`<s> ${PROMPT}${fresh}`);
    const streamed = await t.post("/api/generate-one", { request_id: uid(), prompt: PROMPT, only_new_tokens: false, generation_config: { do_sample: false, max_new_tokens: 8 } });
    expect((await readChunks(streamed)).join("")).toBe(full);
  });

  test("continuation: 12 then 12 more equal 24 in one go, and the second prompt is ignored", async () => {
    const id = uid();
    const a = await t.generate(id, PROMPT, { max_new_tokens: 12 });
    const b = await t.generate(id, "this prompt is ignored", { max_new_tokens: 12 });
    const whole = await t.generate(uid(), PROMPT, { max_new_tokens: 24 });
    expect(a + b).toBe(whole);
    const all = await t.generate(id, "ignored", { max_new_tokens: 1 }, { only_new_tokens: false });
    expect(all.startsWith(`<s> ${PROMPT}${a}${b}`)).toBe(true);
  });

  test("a fixed seed reproduces sampled text; different seeds differ", async () => {
    const cfg = { do_sample: true, temperature: 1.5, top_k: 0, max_new_tokens: 24 };
    const x = await t.generate(uid(), PROMPT, { ...cfg, seed: 7 });
    const y = await t.generate(uid(), PROMPT, { ...cfg, seed: 7 });
    const z = await t.generate(uid(), PROMPT, { ...cfg, seed: 8 });
    expect(x).toBe(y);
    expect(x).not.toBe(z);
  });

  test("a seeded batch item draws the same text whatever its position in the batch, and alone", async () => {
    const cfg = { do_sample: true, temperature: 1.5, top_k: 0, max_new_tokens: 12, seed: 11 };
    const batch = async (order: string[]) => {
      const r = await t.post("/api/generate-batch", { prompts: order.map((p) => ({ request_id: uid(), prompt: p })), generation_config: cfg });
      const items = (await r.json()) as { response: string }[];
      return Object.fromEntries(order.map((p, i) => [p, items[i]!.response]));
    };
    const ab = await batch([PROMPT, "Another prompt"]);
    const ba = await batch(["Another prompt", PROMPT]);
    expect(ab[PROMPT]).toBe(ba[PROMPT]!);
    expect(ab["Another prompt"]).toBe(ba["Another prompt"]!);
    expect(await t.generate(uid(), PROMPT, cfg)).toBe(ab[PROMPT]!);
  });

  test("top_k 1 and a tiny top_p both equal greedy", async () => {
    const greedy = await t.generate(uid(), PROMPT, { max_new_tokens: 16 });
    expect(await t.generate(uid(), PROMPT, { do_sample: true, top_k: 1, max_new_tokens: 16 })).toBe(greedy);
    expect(await t.generate(uid(), PROMPT, { do_sample: true, top_k: 0, top_p: 1e-6, max_new_tokens: 16 })).toBe(greedy);
  });
});

describe("generate-batch", () => {
  const prompts = ["Hello there", PROMPT, "The quick brown fox", "Once upon a time"];

  test("returns items in input order, each equal to its solo output (both modes)", async () => {
    const solo = await Promise.all(prompts.map((p) => t.generate(uid(), p, { max_new_tokens: 10 })));
    const ids = prompts.map(() => uid("b"));
    const res = await t.post("/api/generate-batch", {
      prompts: prompts.map((prompt, i) => ({ request_id: ids[i], prompt })),
      generation_config: { do_sample: false, max_new_tokens: 10 },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { request_id: string; prompt?: string; response: string }[];
    expect(body.map((b) => b.request_id)).toEqual(ids);
    expect(body.map((b) => b.response)).toEqual(solo);
    expect(body.every((b) => !("prompt" in b))).toBe(true);

    const reversed = [...prompts].reverse();
    const res2 = await t.post("/api/generate-batch", {
      prompts: reversed.map((prompt) => ({ request_id: uid("r"), prompt })),
      only_new_tokens: false,
      generation_config: { do_sample: false, max_new_tokens: 10 },
    });
    const body2 = (await res2.json()) as { request_id: string; prompt: string; response: string }[];
    expect(body2.map((b) => b.response)).toEqual([...solo].reverse());
    expect(body2.map((b) => b.prompt)).toEqual(reversed.map((p) => `<s> ${p}`));
  });

  test("a batch item's request_id continues its own cache whatever the order", async () => {
    const [a, b] = [uid("a"), uid("b")];
    await t.post("/api/generate-batch", { prompts: [{ request_id: a, prompt: "Hello there" }, { request_id: b, prompt: "Once upon a time" }], generation_config: { do_sample: false, max_new_tokens: 6 } });
    const res = await t.post("/api/generate-batch", { prompts: [{ request_id: b, prompt: "x" }, { request_id: a, prompt: "y" }], generation_config: { do_sample: false, max_new_tokens: 6 } });
    const [rb, ra] = (await res.json()) as { response: string }[];
    expect(ra!.response).toBe((await t.generate(uid(), "Hello there", { max_new_tokens: 12 })).slice((await t.generate(uid(), "Hello there", { max_new_tokens: 6 })).length));
    expect(rb!.response.length).toBeGreaterThan(0);
  });
});
