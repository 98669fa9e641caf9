// The attention setting: FLASH_ATTN auto/on/off serves it as set, fastest measures it (cached), and what changes with it —
// the KV state's layout — never crosses over: a blob from the other setting is refused or exact.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chooseAttention, pickAttention } from "../src/engine/attention-probe.ts";
import { loadSettings } from "../src/config.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { Batch, Context, Model } from "../src/native/index.ts";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.ts";

setDefaultTimeout(120_000);

const dirs: string[] = [];
const procs: ServerProcess[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "attention-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const p of procs) p.proc.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("choosing the attention setting", () => {
  test("the rule: the lower sum of per-token times wins; a tie keeps flash attention", () => {
    expect(pickAttention([10, 32], [12, 22])).toBe(0); // the CPU shape: slower at the start, much faster deep
    expect(pickAttention([5, 6], [6, 9])).toBe(1); // the GPU shape: faster everywhere
    expect(pickAttention([10, 20], [20, 10])).toBe(1);
  });

  test("FLASH_ATTN takes auto, on, off, fastest (or -1, 1, 0, -2); anything else is refused by name", () => {
    expect(["auto", "on", "off", "fastest", "-1", "1", "0", "-2", ""].map((v) => loadSettings({ FLASH_ATTN: v }).flashAttn)).toEqual([-1, 1, 0, -2, -1, 1, 0, -2, -2]);
    expect(() => loadSettings({ FLASH_ATTN: "yes" })).toThrow(/FLASH_ATTN must be auto, on, off or fastest/);
  });

  test("FLASH_ATTN auto, on or off is served as set, without a probe", async () => {
    const model = Model.load(await ensureModel("tiny"));
    try {
      for (const v of [-1, 0, 1] as const) {
        expect(chooseAttention(model, v, { threads: 2, threadPoll: 0, maxDepth: 512, cacheKey: "k", cacheDir: tempDir() })).toEqual({ flashAttn: v, source: "setting" });
      }
    } finally {
      model.free();
    }
  });

  test("fastest measures both settings at two depths, keeps the answer, and the next start reads it back", async () => {
    const model = Model.load(await ensureModel("tiny"));
    const dir = tempDir();
    const o = { threads: 2, threadPoll: 0, maxDepth: 300, cacheDir: dir, minCpuShare: 0 }; // kept even on a busy machine
    try {
      const first = chooseAttention(model, -2, { ...o, cacheKey: "model|lib" });
      expect(first.source).toBe("probe");
      expect(first.probe!.depths).toEqual([32, 293]); // the deep point is capped by the context (less the timed steps)
      for (const ms of [...first.probe!.onMs, ...first.probe!.offMs]) expect(ms).toBeGreaterThan(0);
      expect(first.flashAttn).toBe(pickAttention(first.probe!.onMs, first.probe!.offMs));
      expect(readdirSync(dir)).toHaveLength(1);
      const again = chooseAttention(model, -2, { ...o, cacheKey: "model|lib" });
      expect(again).toEqual({ ...first, source: "cached" });
      const other = chooseAttention(model, -2, { ...o, cacheKey: "other model|lib" });
      expect(other.source).toBe("probe"); // another key measures again
      const busy = chooseAttention(model, -2, { ...o, cacheKey: "busy", minCpuShare: 1e9 }); // as if other work had taken the cores
      expect(busy.source).toBe("probe");
      expect(chooseAttention(model, -2, { ...o, cacheKey: "busy", minCpuShare: 1e9 }).source).toBe("probe"); // not kept: measured again
    } finally {
      model.free();
    }
  });
});

describe("KV state across attention settings", () => {
  test("llama.cpp refuses a sequence state saved with the other setting (the V layout differs), or restores it exactly", async () => {
    const model = Model.load(await ensureModel("tiny"));
    const prompt = model.tokenize("The quick brown fox jumps over the lazy dog.", true, false);
    const decodeInto = (ctx: Context) => {
      using batch = new Batch(64, 1);
      prompt.forEach((t, i) => batch.add(t, i, 0, i === prompt.length - 1));
      expect(ctx.decode(batch)).toBe(0);
    };
    const next = (ctx: Context) => {
      using batch = new Batch(8, 1);
      batch.add(7, prompt.length, 0, true);
      expect(ctx.decode(batch)).toBe(0);
      return ctx.logitsRow(0).slice();
    };
    try {
      for (const [from, to] of [[1, 0], [0, 1]] as const) {
        using src = new Context(model, { nCtx: 256, nSeqMax: 1, flashAttn: from });
        using dst = new Context(model, { nCtx: 256, nSeqMax: 1, flashAttn: to });
        using ref = new Context(model, { nCtx: 256, nSeqMax: 1, flashAttn: to });
        decodeInto(src);
        decodeInto(ref);
        const state = src.saveSequence(0);
        if (dst.restoreSequence(0, state)) {
          expect(dst.seqPosMax(0)).toBe(prompt.length - 1);
          expect(next(dst)).toEqual(next(ref)); // restored exactly
        } else {
          expect(dst.seqPosMax(0)).toBe(-1); // refused, nothing half-loaded
        }
      }
    } finally {
      model.free();
    }
  });

  test("a session written under one setting is not restored under the other: the blob's identity names the setting, and the tokens are decoded again", async () => {
    const sessions = join(tempDir(), "sessions");
    const env = { MODEL_PATH: await ensureModel("tiny"), PARALLEL: "2", CTX_SIZE: "256", SESSION_DIR: sessions, THREADS: "2" };
    const gen = async (s: ServerProcess, n: number) => {
      const r = await s.post("/api/generate-one", { request_id: "fa-switch", prompt: "[INST] A poem about cats [/INST]\n\n", stream_response: false, generation_config: { do_sample: false, max_new_tokens: n } });
      expect(r.status).toBe(200);
      return { session: r.headers.get("x-session"), text: await r.text() };
    };
    const start = async (flashAttn: string) => {
      const s = await startServerProcess({ ...env, FLASH_ATTN: flashAttn });
      procs.push(s);
      const health = (await (await fetch(`${s.url}/health`)).json()) as { model: { attention: { flashAttn: number; source: string } } };
      expect(health.model.attention).toEqual({ flashAttn: flashAttn === "on" ? 1 : 0, source: "setting" });
      return s;
    };
    const on = await start("on");
    expect((await gen(on, 8)).session).toBe("new");
    on.proc.kill("SIGTERM");
    expect(await on.exited).toBe(0);
    const off = await start("off");
    expect((await gen(off, 8)).session).toBe("recomputed");
    // and under the same setting again, the state written by the "off" server is restored as usual
    expect(on.log()).toContain("flash attention on");
    off.proc.kill("SIGTERM");
    expect(await off.exited).toBe(0);
    const offAgain = await start("off");
    expect((await gen(offAgain, 4)).session).toBe("restored");
    offAgain.proc.kill("SIGTERM");
    await offAgain.exited;
  });
});

describe("the two attention paths FLASH_ATTN chooses between", () => {
  test("agrees with the plain attention path: logits after a long prompt and over 32 greedy steps stay within float tolerance", async () => {
    const model = Model.load(await ensureModel("tiny"));
    const prompt = model.tokenize("The quick brown fox jumps over the lazy dog. ".repeat(40), true, false); // deep enough for several KV blocks
    try {
      using on = new Context(model, { nCtx: 1024, nSeqMax: 1, flashAttn: 1 });
      using off = new Context(model, { nCtx: 1024, nSeqMax: 1, flashAttn: 0 });
      using batch = new Batch(512, 1);
      const feed = (ctx: Context, ids: ArrayLike<number>, from: number) => {
        batch.clear();
        for (let i = 0; i < ids.length; i++) batch.add(ids[i]!, from + i, 0, i === ids.length - 1);
        expect(ctx.decode(batch)).toBe(0);
        return ctx.logitsRow(0).slice();
      };
      let a = feed(on, prompt, 0);
      let b = feed(off, prompt, 0);
      for (let step = 0; step < 32; step++) {
        let scale = 0, diff = 0;
        for (let i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(b[i]!));
          diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
        }
        expect(diff).toBeLessThan(2e-3 * scale + 1e-3);
        const next = [argmaxOf(b)]; // both follow the same tokens
        a = feed(on, next, prompt.length + step);
        b = feed(off, next, prompt.length + step);
      }
    } finally {
      model.free();
    }
  });
});

describe("attention without flash attention is batch-invariant (native/patches)", () => {
  test("a sequence's logits are bit-identical whether its prompt is decoded alone or split by a neighbour's token", async () => {
    const model = Model.load(await ensureModel("tiny"));
    const a = model.tokenize("The quick brown fox jumps over the lazy dog, twice over.", true, false);
    const b = model.tokenize("A longer neighbour: ".repeat(12), true, false); // deeper: a wider attended KV range
    const opts = { nCtx: 4 * 512, nBatch: 512, nSeqMax: 4, kvUnified: false, flashAttn: 0 };
    try {
      using batch = new Batch(512, 1);
      const decode = (ctx: Context, items: [seq: number, ids: Int32Array, from: number][]) => {
        batch.clear();
        for (const [seq, ids, from] of items) ids.forEach((id, i) => batch.add(id, from + i, seq, i === ids.length - 1));
        expect(ctx.decode(batch)).toBe(0);
      };
      // A's first part is decoded alone in both contexts (a first token attends only to itself,
      // which every kernel computes exactly); the second part is where the split falls
      const [a0, a1] = [a.slice(0, 6), a.slice(6)];
      using alone = new Context(model, opts);
      decode(alone, [[0, a0, 0]]);
      decode(alone, [[0, a1, a0.length]]);
      const expected = alone.logitsRow(0).slice();
      // the neighbour decodes one token in the same step: llama.cpp splits the step into a micro-batch
      // of one token per sequence (a one-row attention matmul for our first token), then the rest
      using mixed = new Context(model, opts);
      // (in sequence-id order, as the runner lays out every step)
      decode(mixed, [[0, a0, 0], [1, b.slice(0, -1), 0]]);
      decode(mixed, [[0, a1, a0.length], [1, b.slice(-1), b.length - 1]]);
      expect(mixed.logitsRow(0)).toEqual(expected);
    } finally {
      model.free();
    }
  });
});

function argmaxOf(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
