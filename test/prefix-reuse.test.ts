// Shared-prefix KV reuse on the real engine: a new request whose tokens begin with an idle cached
// sequence's starts from a copy of that slot, and its output is the same as decoding it all.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { EngineStats } from "../src/engine/messages.ts";
import { startTestApp, uid, withTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(120_000);

// ~500 tokens shared, then a distinct question
const SHARED = "You are a helpful assistant. Answer briefly and precisely. ".repeat(45);
const ask = (q: string) => `${SHARED}\nQuestion: ${q}\nAnswer:`;
const env = { CTX_SIZE: "1024", PARALLEL: "2", CACHE_SEQUENCES: "6" };

let t: TestApp;
let cold: TestApp; // the same model without reuse: the reference outputs
beforeAll(async () => {
  t = await startTestApp(env);
  cold = await startTestApp({ ...env, PREFIX_REUSE_MIN_TOKENS: "0" });
});
afterAll(async () => Promise.all([t?.close(), cold?.close()]));

const stats = async (a: TestApp) => (await a.engine.stats()) as EngineStats;

describe("shared-prefix reuse", () => {
  test("a new request_id sharing a ~500-token prefix copies it instead of decoding it; its output is unchanged", async () => {
    await t.generate(uid("first"), ask("What is the capital of France?"), { max_new_tokens: 4 });
    const before = await stats(t);
    const text = await t.generate(uid("second"), ask("How many legs has a cat?"), { max_new_tokens: 8 });
    const after = await stats(t);
    expect(after.prefixHits - before.prefixHits).toBe(1);
    expect(after.prefixTokens - before.prefixTokens).toBeGreaterThan(450);
    expect(text).toBe(await cold.generate(uid("ref"), ask("How many legs has a cat?"), { max_new_tokens: 8 }));
    expect((await stats(cold)).prefixHits).toBe(0);
  });

  test("the same prompt again under a new id reuses all but its last token, and generates the same text", async () => {
    const p = ask("Name a colour.");
    const a = await t.generate(uid("same-a"), p, { max_new_tokens: 8 });
    const before = await stats(t);
    expect(await t.generate(uid("same-b"), p, { max_new_tokens: 8 })).toBe(a);
    expect((await stats(t)).prefixHits - before.prefixHits).toBe(1);
  });

  test("the source session is untouched: continuing it equals one uninterrupted run", async () => {
    const id = uid("source");
    const p = ask("Count to three.");
    const first = await t.generate(id, p, { max_new_tokens: 4 });
    await t.generate(uid("borrower"), p + " One", { max_new_tokens: 4 }); // copies the source's prefix
    const rest = await t.generate(id, "", { max_new_tokens: 4 });
    expect(first + rest).toBe(await cold.generate(uid("whole"), p, { max_new_tokens: 8 }));
  });

  test("multi-turn chat on /v1 pays only for the new turn", async () => {
    const messages = [{ role: "system", content: SHARED }, { role: "user", content: "Hello" }];
    const r1 = await t.post("/v1/chat/completions", { messages, max_tokens: 6, temperature: 0 });
    const reply = ((await r1.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } });
    const before = await stats(t);
    const turn2 = [...messages, { role: "assistant", content: reply.choices[0]!.message.content }, { role: "user", content: "And then?" }];
    const r2 = await t.post("/v1/chat/completions", { messages: turn2, max_tokens: 6, temperature: 0 });
    const second = (await r2.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
    const after = await stats(t);
    expect(after.prefixHits - before.prefixHits).toBe(1);
    expect(after.prefixTokens - before.prefixTokens).toBeGreaterThanOrEqual(reply.usage.prompt_tokens);
    expect(after.prefixTokens - before.prefixTokens).toBeLessThan(second.usage.prompt_tokens);
    const ref = await cold.post("/v1/chat/completions", { messages: turn2, max_tokens: 6, temperature: 0 });
    expect(second.choices[0]!.message.content).toBe(((await ref.json()) as typeof second).choices[0]!.message.content);
    // turn 2 took turn 1's one-off sequence over (its slot and cells): no stale copy of turn 1 is left cached
    expect(after.cachedSequences).toBe(before.cachedSequences);
  });

  test("with one unified KV buffer too", async () => {
    await withTestApp({ ...env, KV_UNIFIED: "true", KV_CELLS: "4096" }, async (u) => {
      await u.generate(uid("u1"), ask("Why is the sky blue?"), { max_new_tokens: 4 });
      const text = await u.generate(uid("u2"), ask("What is two plus two?"), { max_new_tokens: 8 });
      expect((await stats(u)).prefixHits).toBe(1);
      expect(text).toBe(await cold.generate(uid("uref"), ask("What is two plus two?"), { max_new_tokens: 8 }));
    });
  });

  test("chat under a request_id follows the conversation: each turn continues the session, an edited history is honoured, an evicted one restores", async () => {
    const id = uid("chat");
    const chat = async (app: TestApp, messages: { role: string; content: string }[], requestId?: string) => {
      const r = await app.post("/v1/chat/completions", { messages, max_tokens: 6, temperature: 0, ...(requestId ? { request_id: requestId } : {}) });
      expect(r.status).toBe(200);
      return ((await r.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    };
    const turn1 = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }];
    const r1 = await chat(t, turn1, id);
    expect(r1).toBe(await chat(cold, turn1));
    const cellsAfter1 = ((await t.engine.describe(id)) as { kv_cells: number }).kv_cells;
    const turn2 = [...turn1, { role: "assistant", content: r1 }, { role: "user", content: "More please" }];
    expect(await chat(t, turn2, id)).toBe(await chat(cold, turn2));
    expect(((await t.engine.describe(id)) as { kv_cells: number }).kv_cells).toBeGreaterThan(cellsAfter1);
    // the client rewrote the first message: the session keeps only what still agrees
    const edited = [{ role: "system", content: "Be verbose." }, { role: "user", content: "Hello" }];
    expect(await chat(t, edited, id)).toBe(await chat(cold, edited));
    // pushed out of the KV cache by other sessions, then the next turn
    for (let i = 0; i < 8; i++) await t.generate(uid("filler"), `filler ${i} ${"x ".repeat(20)}`, { max_new_tokens: 2 });
    expect(((await t.engine.describe(id)) as { tier: string }).tier).not.toBe("kv");
    const turn3 = [...edited, { role: "assistant", content: "Sure." }, { role: "user", content: "Go on" }];
    expect(await chat(t, turn3, id)).toBe(await chat(cold, turn3));
  });
});

