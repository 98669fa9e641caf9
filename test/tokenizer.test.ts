// llama.cpp's own tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out) through our binding.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Model } from "../src/native/index.ts";
import { llamaSourceDir } from "../src/gguf/paths.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

function readVectors(vocab: string): { text: string; ids: number[] }[] {
  const inp = readFileSync(`${vocab}.inp`, "utf8");
  const out = readFileSync(`${vocab}.out`, "utf8").split("\n");
  if (out[out.length - 1] === "") out.pop();
  const texts = inp.split("\n__ggml_vocab_test__\n");
  if (texts[texts.length - 1] === "") texts.pop();
  expect(texts.length).toBe(out.length);
  return texts.map((text, i) => ({ text, ids: out[i]!.trim() === "" ? [] : out[i]!.trim().split(/\s+/).map(Number) }));
}

const vocabs = ["llama-spm", "llama-bpe", "gpt-2", "phi-3", "qwen2", "falcon", "starcoder", "deepseek-llm", "command-r", "mpt", "bert-bge"];

describe("tokenizer vectors (llama.cpp models/ggml-vocab-*)", () => {
  for (const name of vocabs) {
    const path = join(llamaSourceDir(), "models", `ggml-vocab-${name}.gguf`);
    test(`tokenizer ${name}`, () => {
      const vectors = readVectors(path);
      using model = Model.load(path, { vocabOnly: true });
      expect(vectors.length).toBeGreaterThan(10);
      for (const { text, ids } of vectors) {
        const got = Array.from(model.tokenize(text, false, false));
        if (got.join(" ") !== ids.join(" ")) throw new Error(`${name}: ${JSON.stringify(text)} -> ${got} (expected ${ids})`);
      }
    });
  }

  test("tokenizer renders special tokens only when asked", () => {
    using model = Model.load(join(llamaSourceDir(), "models", "ggml-vocab-llama-spm.gguf"), { vocabOnly: true });
    const ids = model.tokenize("[INST] Hi [/INST]", true, true);
    expect(ids[0]).toBe(model.info.bos);
    expect(model.detokenize(ids, true)).toBe("<s> [INST] Hi [/INST]");
    expect(model.detokenize(ids, false)).toBe(" [INST] Hi [/INST]");
    // parse_special=false treats "<s>" as plain text, never as BOS
    expect(Array.from(model.tokenize("<s>", false, false))).not.toContain(model.info.bos);
    expect(Array.from(model.tokenize("<s>", false, true))).toEqual([model.info.bos]);
  });
});
