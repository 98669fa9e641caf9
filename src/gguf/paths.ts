// Cache locations shared by the model generator and tests.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** llama.cpp version whose source tree build-native.sh checks out (via node-llama-cpp). */
export const LLAMA_SOURCE_TAG = "node-llama-cpp-3.22.1";

/** Root of all cached artifacts: $LLM_CACHE_DIR or ~/.cache/bun-llm-server. */
export function cacheRoot(): string {
  return process.env.LLM_CACHE_DIR ?? join(homedir(), ".cache", "bun-llm-server");
}

/** Directory of cached models (synthetic presets, the default model): $LLM_MODELS_DIR or <cache>/models. */
export function modelsDir(): string {
  return process.env.LLM_MODELS_DIR || join(cacheRoot(), "models");
}

/** The llama.cpp source tree cloned by build-native.sh (holds models/ggml-vocab-*.gguf). */
export function llamaSourceDir(): string {
  return join(cacheRoot(), "src", LLAMA_SOURCE_TAG, "llama.cpp");
}

/** Path of llama.cpp's ggml-vocab-<name>.gguf; throws a clear error when the source tree is missing. */
export function vocabPath(name: string): string {
  const dir = llamaSourceDir();
  if (!existsSync(join(dir, "models"))) {
    throw new Error(`llama.cpp source not found at ${dir}: run ./build-native.sh first`);
  }
  const path = join(dir, "models", `ggml-vocab-${name}.gguf`);
  if (!existsSync(path)) throw new Error(`vocab file not found: ${path}`);
  return path;
}

/** A vocab given as a file path (contains "/" or ends in .gguf) or as a ggml-vocab short name. */
export function isVocabName(vocab: string): boolean {
  return !vocab.includes("/") && !vocab.endsWith(".gguf");
}

export function resolveVocab(vocab: string): string {
  return isVocabName(vocab) ? vocabPath(vocab) : vocab;
}
