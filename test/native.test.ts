// The native layer on the real library: batching, sequence copy, state, bad files.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureModel } from "../src/gguf/models.ts";
import { Batch, Context, LlamaSampler, Model, ModelLoadError, nativeArgmax } from "../src/native/index.ts";
import { argmax } from "../src/sampling/logits.ts";
import { greedyAlone } from "./helpers/greedy.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

let model: Model;
beforeAll(async () => {
  model = Model.load(await ensureModel("tiny"));
});
afterAll(() => model?.free());

const prompts = ["Once upon a time", "[INST] Write a poem about cats [/INST]\n\n", "The quick brown fox jumps", "1 2 3 4 5"];

describe("native engine", () => {
  test("model facts are read from the GGUF", () => {
    expect(model.info.nVocab).toBe(32000);
    expect(model.info.nLayer).toBeGreaterThan(0);
    expect(model.info.nHeadKv).toBeLessThan(model.info.nHead); // the fixture is GQA
    expect(model.info.eogTokens).toContain(model.info.eos);
  });

  test("batched decode of several sequences gives each the tokens it gets alone", () => {
    const n = 24;
    const toks = prompts.map((p) => model.tokenize(p, true, true));
    const alone = toks.map((t) => greedyAlone(model, t, n));
    using ctx = new Context(model, { nCtx: 2048, nBatch: 512, nSeqMax: prompts.length });
    using batch = new Batch(512, 1);
    const outs: number[][] = toks.map(() => []);
    const pos = toks.map((t) => t.length);
    const rows: number[] = [];
    toks.forEach((t, s) => t.forEach((tok, i) => {
      const r = batch.add(tok, i, s, i === t.length - 1);
      if (r >= 0) rows[s] = r;
    }));
    expect(ctx.decode(batch)).toBe(0);
    for (let k = 0; k < n; k++) {
      const next = toks.map((_, s) => argmax(ctx.logitsRow(rows[s]!)));
      expect(toks.map((_, s) => ctx.argmaxRow(rows[s]!))).toEqual(next); // the engine's native greedy path
      batch.clear();
      next.forEach((tok, s) => {
        outs[s]!.push(tok);
        rows[s] = batch.add(tok, pos[s]!++, s, true);
      });
      expect(ctx.decode(batch)).toBe(0);
    }
    outs.forEach((o, s) => expect(o.slice(0, alone[s]!.length)).toEqual(alone[s]!));
  });

  test("seq_cp of a shared prefix then divergent continuations equals independent runs", () => {
    const prefix = model.tokenize("A shared beginning of a story about", true, true);
    const tails = [" dragons", " robots and", " the sea"].map((s) => model.tokenize(s, false, false));
    const expected = tails.map((t) => greedyAlone(model, [...prefix, ...t], 16));
    using ctx = new Context(model, { nCtx: 2048, nBatch: 512, nSeqMax: 4 });
    using batch = new Batch(512, 1);
    prefix.forEach((tok, i) => batch.add(tok, i, 0, false));
    expect(ctx.decode(batch)).toBe(0);
    for (let s = 1; s <= tails.length; s++) ctx.seqCp(0, s);
    expect(ctx.seqPosMax(3)).toBe(prefix.length - 1);
    const results = tails.map((tail, k) => {
      const s = k + 1;
      const out: number[] = [];
      let pos = prefix.length;
      batch.clear();
      tail.forEach((tok, i) => batch.add(tok, pos++, s, i === tail.length - 1));
      expect(ctx.decode(batch)).toBe(0);
      for (let j = 0; j < 16; j++) {
        const tok = argmax(ctx.logitsRow(0));
        out.push(tok);
        if (model.isEog(tok)) break;
        batch.clear();
        batch.add(tok, pos++, s, true);
        expect(ctx.decode(batch)).toBe(0);
      }
      return out;
    });
    expect(results).toEqual(expected);
  });

  test("a sequence's state saved and restored into another slot continues identically", () => {
    const prompt = model.tokenize("Saving and restoring the cache", true, true);
    const expected = greedyAlone(model, prompt, 8);
    using ctx = new Context(model, { nCtx: 1024, nBatch: 512, nSeqMax: 2 });
    using batch = new Batch(512, 1);
    prompt.forEach((tok, i) => batch.add(tok, i, 0, i === prompt.length - 1));
    expect(ctx.decode(batch)).toBe(0);
    const first = argmax(ctx.logitsRow(0));
    const state = ctx.saveSequence(0);
    expect(state.length).toBeGreaterThan(0);
    ctx.seqRm(0);
    expect(ctx.seqPosMax(0)).toBe(-1);
    expect(ctx.restoreSequence(1, state)).toBe(true);
    expect(ctx.seqPosMax(1)).toBe(prompt.length - 1);
    const out = [first];
    let pos = prompt.length;
    for (let k = 1; k < 8; k++) {
      batch.clear();
      batch.add(out[out.length - 1]!, pos++, 1, true);
      expect(ctx.decode(batch)).toBe(0);
      out.push(argmax(ctx.logitsRow(0)));
    }
    expect(out).toEqual(expected.slice(0, 8));
  });
});

describe("native argmax kernel (the greedy fast path)", () => {
  // Values drawn from a small set so that ties, NaN, ±Infinity and ±0 meet often, at every length
  // around the SIMD widths (8 lanes, 32 per unrolled step) and at vocabulary size.
  const pick = [Number.NaN, -Infinity, Infinity, 0, -0, 1, -1, 2.5, 2.5, 1e-30];
  let state = 12345;
  const rand = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
  test("equals torch.argmax semantics (first maximum, NaN never wins) on adversarial rows", () => {
    let checked = 0;
    for (const n of [1, 2, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 257, 32000]) {
      for (let trial = 0; trial < 60; trial++) {
        const x = new Float32Array(n);
        const sparse = trial % 3 === 0; // mostly NaN / -Infinity rows
        for (let i = 0; i < n; i++) x[i] = sparse && rand() < 0.9 ? pick[Math.floor(rand() * 2)]! : pick[Math.floor(rand() * pick.length)]!;
        if (trial % 5 === 0) for (let i = 0; i < n; i++) x[i] = (rand() - 0.5) * 40; // dense random logits
        const want = argmax(x);
        expect([nativeArgmax(x), nativeArgmax(x, true)]).toEqual([want, want]);
        checked++;
      }
    }
    expect(nativeArgmax(new Float32Array([Number.NaN, Number.NaN]))).toBe(0);
    expect(nativeArgmax(new Float32Array([-0, 0, 0]))).toBe(0);
    expect(nativeArgmax(new Float32Array([Number.NaN, -Infinity, -Infinity]))).toBe(1);
    expect(checked).toBe(14 * 60);
  });
});

describe("thread scheduling class (HTTP thread SCHED_BATCH, engine back to normal)", () => {
  test.if(process.platform === "linux")("set and reset on the calling thread, as the kernel reports it", () => {
    // in a child process: the test runner's own thread stays as it is
    const script = `
      import { setThreadScheduling } from "${join(import.meta.dir, "../src/native/sched.ts")}";
      import { readFileSync } from "node:fs";
      const policy = () => Number(readFileSync("/proc/thread-self/stat", "utf8").split(") ")[1].split(" ")[38]);
      const out = [policy(), setThreadScheduling(true), policy(), setThreadScheduling(false), policy()];
      console.log(JSON.stringify(out));`;
    const dir = mkdtempSync(join(tmpdir(), "sched-"));
    writeFileSync(join(dir, "probe.ts"), script);
    const r = Bun.spawnSync([process.execPath, join(dir, "probe.ts")]);
    expect(r.stderr.toString()).toBe("");
    expect(JSON.parse(r.stdout.toString())).toEqual([0, true, 3, true, 0]); // SCHED_OTHER, SCHED_BATCH, SCHED_OTHER
  });
});

describe("llama.cpp sampler chain through the shim", () => {
  test("greedy chain equals argmax; top_k 1 with temperature equals greedy; a seeded chain is reproducible", () => {
    using ctx = new Context(model, { nCtx: 512, nBatch: 512, nSeqMax: 1 });
    using batch = new Batch(512, 1);
    const prompt = model.tokenize("Sampling through llama.cpp", true, true);
    prompt.forEach((tok, i) => batch.add(tok, i, 0, i === prompt.length - 1));
    expect(ctx.decode(batch)).toBe(0);
    using greedy = new LlamaSampler(model);
    using topk1 = new LlamaSampler(model, { topK: 1, temperature: 0.7, seed: 3 });
    const last = prompt.length - 1; // llama.cpp samplers take the batch index, not the output row
    const best = argmax(ctx.logitsRow(0));
    expect(greedy.sample(ctx, last)).toBe(best);
    expect(topk1.sample(ctx, last)).toBe(best);
    expect(() => greedy.sample(ctx, 0)).toThrow(/no logits/); // refused, not a process abort
    const draws = (seed: number) => {
      using s = new LlamaSampler(model, { temperature: 2, seed });
      return Array.from({ length: 8 }, () => s.sample(ctx, last));
    };
    expect(draws(42)).toEqual(draws(42));
  });
});

describe("bad model files give a clear error, not a crash", () => {
  const dir = mkdtempSync(join(tmpdir(), "bad-gguf-"));
  test("missing path", () => {
    expect(() => Model.load(join(dir, "nope.gguf"))).toThrow(/model file not found/);
  });
  test("not GGUF", () => {
    const p = join(dir, "text.gguf");
    writeFileSync(p, "this is not a model file at all");
    expect(() => Model.load(p)).toThrow(ModelLoadError);
    expect(() => Model.load(p)).toThrow(/not a GGUF file/);
  });
  test("a directory", () => {
    expect(() => Model.load(dir)).toThrow(/not a file/);
  });
  test("truncated GGUF", async () => {
    const full = readFileSync(await ensureModel("tiny"));
    for (const cut of [8, 64, 4096, Math.floor(full.length / 2)]) {
      const p = join(dir, `cut-${cut}.gguf`);
      writeFileSync(p, full.subarray(0, cut));
      expect(() => Model.load(p)).toThrow(/failed to load model/);
    }
  });
});
