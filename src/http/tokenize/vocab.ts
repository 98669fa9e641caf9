// The served model's vocabulary on the HTTP thread: the engine worker owns the weights, so routes
// that only tokenize (/tokenize, /detokenize, /v1/messages/count_tokens)
// load the same GGUF once more, vocabulary only (llama.cpp's vocab_only: no tensors), on first use.
import type { EngineClient } from "../../engine/client.ts";
import { Model } from "../../native/index.ts";
import { requireModel } from "../errors.ts";

export class Vocabulary {
  #model: Model | null = null;

  constructor(private readonly engine: EngineClient) {}

  /** the vocabulary-only model of the served file (503 while the engine still loads) */
  model(): Model {
    requireModel(this.engine);
    const path = this.engine.model!.path;
    if (this.#model?.path === path) return this.#model;
    this.#model?.free();
    return (this.#model = Model.load(path, { vocabOnly: true }));
  }

  /** tokens of a rendered chat prompt as the engine counts them (PromptSpec.pieces: each piece on its own, nothing added) */
  countPieces(pieces: readonly string[]): number {
    const model = this.model();
    let n = 0;
    for (const p of pieces) n += model.tokenize(p, false, true).length;
    return n;
  }
}
