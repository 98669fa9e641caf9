// Beam search inside the continuous batcher, checked against a plain reference that re-decodes
// every hypothesis from scratch through the native layer (no KV sharing, no batching).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Batch, Context, Model } from "../src/native/index.ts";
import { disconnectMidRequest, startTestApp, uid, type TestApp } from "./helpers/app.ts";
import { referenceBeamSearch, type LogitsFn } from "./helpers/beam-reference.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

let t: TestApp;
let model: Model;
let ctx: Context;
let batch: Batch;
beforeAll(async () => {
  t = await startTestApp({ PARALLEL: "8" }, "tiny-eos");
  model = Model.load(t.settings.modelPath!);
  ctx = new Context(model, { nCtx: 512, nBatch: 512, nSeqMax: 1 });
  batch = new Batch(512, 1);
});
afterAll(() => {
  t?.close();
  batch?.free();
  ctx?.free();
  model?.free();
});

/** Logits after decoding `history` from an empty cache. */
const fromScratch: LogitsFn = (history) => {
  ctx.clearMemory();
  batch.clear();
  history.forEach((tok, i) => batch.add(tok, i, 0, i === history.length - 1));
  if (ctx.decode(batch) !== 0) throw new Error("decode failed");
  return Array.from(ctx.logitsRow(0));
};

const prompts = ["Once upon a time", "The capital of France is", "[INST] Write a haiku [/INST]"];

describe("beam search in the engine equals the plain reference", () => {
  for (const numBeams of [2, 3, 4]) {
    for (const lengthPenalty of [0.5, 1, 2]) {
      test(`num_beams ${numBeams}, length_penalty ${lengthPenalty}`, async () => {
        for (const prompt of prompts) {
          const ids = Array.from(model.tokenize(prompt, true, true));
          const ref = referenceBeamSearch(fromScratch, { prompt: ids, numBeams, lengthPenalty, eos: model.info.eogTokens, maxNewTokens: 12, repetitionPenalty: 1 });
          const id = uid("beam");
          const text = await t.generate(id, prompt, { num_beams: numBeams, length_penalty: lengthPenalty, max_new_tokens: 12 });
          expect(text).toBe(model.piecesText(ref.tokens));
          const info = (await t.engine.describe(id))!;
          expect(info.generated_tokens).toBe(ref.tokens.length + (ref.finishedByEos ? 1 : 0));
        }
      });
    }
  }

  test("length_penalty changes the chosen answer on this model (so the comparison can fail)", async () => {
    const outs = new Set<string>();
    for (const lp of [0.5, 1, 2]) outs.add(await t.generate(uid(), prompts[0]!, { num_beams: 4, length_penalty: lp, max_new_tokens: 12 }));
    expect(outs.size).toBeGreaterThan(1);
  });
});

describe("beams in the continuous batcher", () => {
  test("a beam request running beside greedy requests leaves their outputs unchanged", async () => {
    const greedyPrompts = ["Alpha beta gamma", "def main():", "The sea was calm"];
    // 8 tokens: a mixed-up row or cell shows at once; longer greedy runs of this random-weight model
    // can flip a near-tie under another batch shape (see the concurrency test in api-robustness)
    const solo = await Promise.all(greedyPrompts.map((p) => t.generate(uid(), p, { max_new_tokens: 8 })));
    const beamSolo = await t.generate(uid(), prompts[1]!, { num_beams: 3, max_new_tokens: 12 });
    const [beam, ...mixed] = await Promise.all([
      t.generate(uid(), prompts[1]!, { num_beams: 3, max_new_tokens: 12 }),
      ...greedyPrompts.map((p) => t.generate(uid(), p, { max_new_tokens: 8 })),
    ]);
    expect(mixed).toEqual(solo);
    expect(beam).toBe(beamSolo);
  });

  test("streaming beams: settled text first, the whole equals the non-streamed winner", async () => {
    const r = await t.post("/api/generate-one", { request_id: uid(), prompt: prompts[0], generation_config: { do_sample: false, num_beams: 2, max_new_tokens: 12 } });
    const text = await r.text();
    expect(text).toBe(await t.generate(uid(), prompts[0]!, { num_beams: 2, max_new_tokens: 12 }));
  });

  test("a continuation after beam search continues the winner", async () => {
    const id = uid();
    const a = await t.generate(id, prompts[2]!, { num_beams: 3, max_new_tokens: 8 });
    const full = await t.generate(id, "ignored", { max_new_tokens: 4 }, { only_new_tokens: false });
    expect(full.startsWith(`<s> ${prompts[2]}${a}`)).toBe(true);
    const info = (await t.engine.describe(id))!;
    expect(info.state).toBe("idle");
  });

  test("num_beams 1 is plain greedy; beams over the limit get 422", async () => {
    expect(await t.generate(uid(), prompts[0]!, { num_beams: 1, max_new_tokens: 10 })).toBe(await t.generate(uid(), prompts[0]!, { max_new_tokens: 10 }));
    const tooMany = await t.post("/api/generate-one", { request_id: uid(), prompt: "x", generation_config: { num_beams: 9 } });
    expect(tooMany.status).toBe(422);
    expect(((await tooMany.json()) as { error: { field: string } }).error.field).toBe("generation_config.num_beams");
  });

  test("beam sampling with a seed is reproducible", async () => {
    const cfg = { do_sample: true, num_beams: 3, temperature: 1.2, top_k: 20, max_new_tokens: 12, seed: 11 };
    expect(await t.generate(uid(), prompts[0]!, cfg)).toBe(await t.generate(uid(), prompts[0]!, cfg));
  });

  test("disconnect frees all of a request's beams", async () => {
    const id = uid();
    const body = { request_id: id, prompt: prompts[0], generation_config: { do_sample: false, num_beams: 4, length_penalty: 5, max_new_tokens: 400 } };
    expect(await disconnectMidRequest(t, body, 150)).toBe(true);
    expect((await t.engine.stats()).running).toBe(0);
    // all 8 slots usable again: 8 greedy requests run at once
    const outs = await Promise.all(Array.from({ length: 8 }, () => t.generate(uid(), "Hi", { max_new_tokens: 4 })));
    expect(outs.length).toBe(8);
    // the client received nothing of this new session: none is left behind
    expect(await t.engine.describe(id)).toBeNull();
  });
});
