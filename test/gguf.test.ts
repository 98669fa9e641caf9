// GGUF reader/writer round trips, llama.cpp vocab files, error handling and synthetic models.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { f16ToF32, f32ToF16 } from "../src/gguf/f16.ts";
import { ensureModel, modelPath } from "../src/gguf/models.ts";
import { llamaSourceDir } from "../src/gguf/paths.ts";
import { readGguf, readTensorBytes } from "../src/gguf/reader.ts";
import { countParams, planTensors, writeSyntheticModel, type SynthSpec } from "../src/gguf/synth-model.ts";
import { GgmlType, GgufType, getNumber, getStringArray, gv, type GgufValue } from "../src/gguf/types.ts";
import { writeGguf } from "../src/gguf/writer.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

const dir = mkdtempSync(join(tmpdir(), "gguf-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const vocabDir = join(llamaSourceDir(), "models");
const vocab = (name: string) => join(vocabDir, `ggml-vocab-${name}.gguf`);

function sampleMetadata(): Map<string, GgufValue> {
  return new Map<string, GgufValue>([
    ["general.architecture", gv.str("llama")],
    ["t.u8", gv.u8(255)],
    ["t.i8", gv.i8(-128)],
    ["t.u16", gv.u16(65535)],
    ["t.i16", gv.i16(-32768)],
    ["t.u32", gv.u32(4294967295)],
    ["t.i32", gv.i32(-2147483648)],
    ["t.f32", gv.f32(0.5)],
    ["t.f64", gv.f64(Math.PI)],
    ["t.u64", gv.u64(2n ** 64n - 1n)],
    ["t.i64", gv.i64(-(2n ** 63n))],
    ["t.bool", gv.bool(true)],
    ["t.str", gv.str("héllo ✓ 世界")],
    ["t.empty", gv.str("")],
    ["t.strings", gv.strings(["a", "", "ünï", "<0x0A>"])],
    ["t.f32s", gv.f32s([1.5, -2, 1e-8])],
    ["t.i32s", gv.i32s([-1, 0, 7])],
    ["t.bools", gv.bools([true, false, true])],
    ["t.u64s", { type: GgufType.ARRAY, itemType: GgufType.UINT64, value: new BigUint64Array([1n, 2n ** 60n]) }],
    ["t.i16s", { type: GgufType.ARRAY, itemType: GgufType.INT16, value: new Int16Array([-3, 3]) }],
    ["t.f64s", { type: GgufType.ARRAY, itemType: GgufType.FLOAT64, value: new Float64Array([0.1, 1e300]) }],
    ["t.emptyarr", gv.strings([])],
  ]);
}

describe("round trip", () => {
  test("metadata of every type and F32/F16/raw tensors", () => {
    const path = join(dir, "rt.gguf");
    const meta = sampleMetadata();
    const a = Float32Array.from({ length: 6 }, (_, i) => i - 2.25);
    const b = Float32Array.from({ length: 35 }, (_, i) => i / 7); // odd size: exercises padding
    const raw = new Uint8Array(4 * 3).map((_, i) => i);
    writeGguf(path, meta, [
      { name: "a", dims: [3, 2], type: GgmlType.F32, data: a },
      { name: "b.half", dims: [35], type: GgmlType.F16, data: () => [b.subarray(0, 10), b.subarray(10)] },
      { name: "c.raw", dims: [3], type: GgmlType.F32, data: raw },
    ]);
    const f = readGguf(path);
    expect(f.version).toBe(3);
    expect(f.alignment).toBe(32);
    expect(f.dataOffset % 32).toBe(0);
    expect([...f.metadata.keys()]).toEqual([...meta.keys()]);
    for (const [k, v] of meta) expect(f.metadata.get(k)).toEqual(v);
    expect(f.metadata.get("t.f32s")!.value).toBeInstanceOf(Float32Array);
    expect(f.tensors.map((t) => [t.name, t.dims, t.type])).toEqual([
      ["a", [3, 2], GgmlType.F32],
      ["b.half", [35], GgmlType.F16],
      ["c.raw", [3], GgmlType.F32],
    ]);
    for (const t of f.tensors) expect(t.offset % 32).toBe(0);
    expect(new Float32Array(readTensorBytes(f, "a").buffer)).toEqual(a);
    const half = new Uint16Array(readTensorBytes(f, "b.half").buffer);
    expect(Array.from(half, f16ToF32)).toEqual(Array.from(b, (x) => f16ToF32(f32ToF16(x))));
    expect(readTensorBytes(f, "c.raw")).toEqual(raw);
    expect(f.fileSize % 32).toBe(0);
  });

  test("custom alignment and rewrite is byte-identical", () => {
    const p1 = join(dir, "al1.gguf");
    const p2 = join(dir, "al2.gguf");
    const meta = new Map([["general.alignment", gv.u32(64)], ...sampleMetadata()]);
    writeGguf(p1, meta, [{ name: "x", dims: [5], type: GgmlType.F32, data: new Float32Array(5).fill(1) }]);
    const f = readGguf(p1);
    expect(f.alignment).toBe(64);
    expect(f.dataOffset % 64).toBe(0);
    writeGguf(p2, f.metadata, [{ name: "x", dims: [5], type: GgmlType.F32, data: readTensorBytes(f, "x") }]);
    expect(readFileSync(p2).equals(readFileSync(p1))).toBe(true);
  });

  test("writer rejects bad input and leaves no partial file", () => {
    const p = join(dir, "bad.gguf");
    const short = () => writeGguf(p, [], [{ name: "x", dims: [4], type: GgmlType.F32, data: new Float32Array(3) }]);
    expect(short).toThrow("expected 16");
    expect(existsSync(p)).toBe(false);
    expect(() => writeGguf(p, [["k", gv.u8(1.5)]], [])).toThrow("does not fit");
    expect(() => writeGguf(p, [["general.alignment", gv.u32(3)]], [])).toThrow("power of two");
  });

  test("f16 conversion", () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(2 ** -24)).toBe(1);
    expect(f16ToF32(f32ToF16(0.1))).toBeCloseTo(0.1, 3);
  });
});

describe("llama.cpp vocab files", () => {
  const files = readdirSync(vocabDir).filter((f) => /^ggml-vocab-.*\.gguf$/.test(f));
  test("vocab files exist", () => expect(files.length).toBeGreaterThan(10));

  for (const file of files) {
    test(file, () => {
      const f = readGguf(join(vocabDir, file));
      expect(f.version === 2 || f.version === 3).toBe(true);
      expect(f.tensors.length).toBe(0);
      const tokens = getStringArray(f.metadata, "tokenizer.ggml.tokens")!;
      expect(tokens.length).toBeGreaterThan(0);
      expect(f.metadata.get("tokenizer.ggml.model")?.type).toBe(GgufType.STRING);
      const types = f.metadata.get("tokenizer.ggml.token_type");
      if (types) expect(types.value).toBeInstanceOf(Int32Array);
      const scores = f.metadata.get("tokenizer.ggml.scores");
      if (scores) expect(scores.value).toBeInstanceOf(Float32Array);
    });
  }

  test("llama-spm: contents, speed and byte-exact rewrite", () => {
    const path = vocab("llama-spm");
    readGguf(path);
    const t0 = performance.now();
    const f = readGguf(path);
    expect(performance.now() - t0).toBeLessThan(200);
    const tokens = getStringArray(f.metadata, "tokenizer.ggml.tokens")!;
    expect(tokens.length).toBe(32000);
    expect(tokens.slice(0, 3)).toEqual(["<unk>", "<s>", "</s>"]);
    expect(getNumber(f.metadata, "tokenizer.ggml.eos_token_id")).toBe(2);
    const out = join(dir, "spm-copy.gguf");
    writeGguf(out, f.metadata, []);
    expect(readFileSync(out).equals(readFileSync(path))).toBe(true);
  });
});

describe("errors", () => {
  const small = join(dir, "small.gguf");
  writeGguf(small, sampleMetadata(), [{ name: "w", dims: [4, 2], type: GgmlType.F32, data: new Float32Array(8) }]);
  const bytes = readFileSync(small);

  test("missing file", () => {
    expect(() => readGguf(join(dir, "nope.gguf"))).toThrow(`GGUF file not found: ${join(dir, "nope.gguf")}`);
  });

  test("not a GGUF file", () => {
    const p = join(dir, "text.gguf");
    writeFileSync(p, "hello world, this is not a model");
    expect(() => readGguf(p)).toThrow(`not a GGUF file: ${p}`);
    const empty = join(dir, "empty.gguf");
    writeFileSync(empty, "");
    expect(() => readGguf(empty)).toThrow("not a GGUF file");
    expect(() => readGguf(dir)).toThrow("not a GGUF file");
  });

  test("unsupported version", () => {
    const p = join(dir, "v9.gguf");
    const b = Uint8Array.from(bytes);
    new DataView(b.buffer).setUint32(4, 9, true);
    writeFileSync(p, b);
    expect(() => readGguf(p)).toThrow("unsupported GGUF version 9");
  });

  test("truncated at every offset", () => {
    const p = join(dir, "trunc.gguf");
    for (let n = 4; n < bytes.length; n += n < 600 ? 1 : 7) {
      writeFileSync(p, bytes.subarray(0, n));
      expect(() => readGguf(p)).toThrow(`truncated GGUF file: ${p}`);
    }
  });

  test("absurd counts fail fast", () => {
    const p = join(dir, "huge.gguf");
    const b = Uint8Array.from(bytes.subarray(0, 64));
    new DataView(b.buffer).setUint32(16, 0xffffffff, true); // n_kv low word
    writeFileSync(p, b);
    expect(() => readGguf(p)).toThrow(/truncated GGUF file|corrupt GGUF file/);
  });
});

describe("synthetic model", () => {
  const spec: SynthSpec = {
    name: "unit",
    vocabPath: vocab("llama-spm"),
    nEmbd: 64,
    nLayer: 2,
    nHead: 4,
    nHeadKv: 2,
    nFf: 96,
    nCtxTrain: 512,
    seed: 7,
    dtype: "f16",
  };

  test("tensor names, shapes, types and metadata", () => {
    const path = join(dir, "unit.gguf");
    const r = writeSyntheticModel(spec, path);
    const f = readGguf(path);
    const nVocab = 32000;
    expect(r.params).toBe(countParams(planTensors(spec, nVocab)));
    const shapes = Object.fromEntries(f.tensors.map((t) => [t.name, [t.dims, t.type]]));
    expect(shapes["token_embd.weight"]).toEqual([[64, nVocab], GgmlType.F16]);
    expect(shapes["output.weight"]).toEqual([[64, nVocab], GgmlType.F16]);
    expect(shapes["output_norm.weight"]).toEqual([[64], GgmlType.F32]);
    for (const i of [0, 1]) {
      expect(shapes[`blk.${i}.attn_norm.weight`]).toEqual([[64], GgmlType.F32]);
      expect(shapes[`blk.${i}.attn_q.weight`]).toEqual([[64, 64], GgmlType.F16]);
      expect(shapes[`blk.${i}.attn_k.weight`]).toEqual([[64, 32], GgmlType.F16]);
      expect(shapes[`blk.${i}.attn_v.weight`]).toEqual([[64, 32], GgmlType.F16]);
      expect(shapes[`blk.${i}.attn_output.weight`]).toEqual([[64, 64], GgmlType.F16]);
      expect(shapes[`blk.${i}.ffn_norm.weight`]).toEqual([[64], GgmlType.F32]);
      expect(shapes[`blk.${i}.ffn_gate.weight`]).toEqual([[64, 96], GgmlType.F16]);
      expect(shapes[`blk.${i}.ffn_up.weight`]).toEqual([[64, 96], GgmlType.F16]);
      expect(shapes[`blk.${i}.ffn_down.weight`]).toEqual([[96, 64], GgmlType.F16]);
    }
    expect(f.tensors.length).toBe(3 + 2 * 9);
    const m = f.metadata;
    expect(m.get("general.architecture")).toEqual(gv.str("llama"));
    expect(getNumber(m, "llama.embedding_length")).toBe(64);
    expect(getNumber(m, "llama.block_count")).toBe(2);
    expect(getNumber(m, "llama.attention.head_count_kv")).toBe(2);
    expect(getNumber(m, "llama.rope.dimension_count")).toBe(16);
    expect(getNumber(m, "llama.vocab_size")).toBe(nVocab);
    expect(getNumber(m, "general.file_type")).toBe(1);
    const v = readGguf(spec.vocabPath).metadata;
    for (const [k, val] of v) if (k.startsWith("tokenizer.")) expect(m.get(k)).toEqual(val);
    const norm = new Float32Array(readTensorBytes(f, "blk.1.ffn_norm.weight").buffer);
    expect(norm.every((x) => x === 1)).toBe(true);
  });

  test("deterministic in the seed", () => {
    const a = join(dir, "det-a.gguf");
    const b = join(dir, "det-b.gguf");
    const c = join(dir, "det-c.gguf");
    writeSyntheticModel({ ...spec, dtype: "f32" }, a);
    writeSyntheticModel({ ...spec, dtype: "f32" }, b);
    writeSyntheticModel({ ...spec, dtype: "f32", seed: 8 }, c);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    const fa = readGguf(a);
    const fc = readGguf(c);
    expect(readTensorBytes(fa, "blk.0.attn_q.weight")).not.toEqual(readTensorBytes(fc, "blk.0.attn_q.weight"));
    const q = new Float32Array(readTensorBytes(fa, "blk.0.attn_q.weight").buffer);
    const rms = Math.sqrt(q.reduce((s, x) => s + x * x, 0) / q.length);
    expect(rms).toBeGreaterThan(0.08);
    expect(rms).toBeLessThan(0.16); // ~1/sqrt(64)
  });

  test("ensureModel caches atomically", async () => {
    const saved = process.env.LLM_CACHE_DIR;
    process.env.LLM_CACHE_DIR = join(dir, "cache");
    try {
      const s = { ...spec, name: "cached" };
      const [p1, p2] = await Promise.all([ensureModel(s), ensureModel(s)]);
      expect(p1).toBe(p2);
      expect(p1).toBe(modelPath(s));
      expect(p1.startsWith(join(dir, "cache", "models", "cached-"))).toBe(true);
      expect(readdirSync(join(dir, "cache", "models"))).toEqual([p1.split("/").pop()!]);
      expect(modelPath({ ...s, seed: 99 })).not.toBe(p1);
      expect(readGguf(p1).tensors.length).toBe(21);
    } finally {
      if (saved === undefined) delete process.env.LLM_CACHE_DIR;
      else process.env.LLM_CACHE_DIR = saved;
    }
  });
});
