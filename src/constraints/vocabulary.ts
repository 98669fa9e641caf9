// The vocabulary a grammar worker compiles against, from the model's GGUF (its raw token strings and
// tokenizer kind) and the loaded model (vocabulary size, end-of-generation and textless tokens).
import { readGguf } from "../gguf/reader.ts";
import { getStringArray } from "../gguf/types.ts";
import type { Model } from "../native/index.ts";
import type { Vocabulary } from "./messages.ts";

export function vocabularyOf(path: string, model: Model): Vocabulary {
  const file = readGguf(path);
  const tokens = getStringArray(file.metadata, "tokenizer.ggml.tokens");
  if (!tokens) throw new Error(`${path} has no tokenizer.ggml.tokens: constrained output needs the vocabulary`);
  const kind = String(file.metadata.get("tokenizer.ggml.model")?.value ?? "gpt2");
  // SentencePiece-style vocabularies ("llama", "t5") spell bytes as <0xNN> and spaces as ▁; the BPE
  // ones (gpt2 and relatives) use GPT-2's byte-to-unicode map
  const vocabType = kind === "llama" || kind === "t5" ? "byte_fallback" : "byte_level";
  return { tokens, vocabType, nVocab: model.info.nVocab, stopTokens: model.info.eogTokens, controlTokens: model.textlessTokens() };
}
