// llama.cpp's own sampler chain (penalties -> top-k -> top-p -> min-p -> temperature -> draw).
// The engine samples in TypeScript with Hugging Face semantics; this chain is the llama.cpp
// reference for comparisons and for callers that want llama.cpp's behaviour.
import type { Pointer } from "bun:ffi";
import { shim } from "./lib.ts";
import type { Context } from "./context.ts";
import type { Model } from "./model.ts";

export interface LlamaSamplerOptions {
  seed?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  /** <= 0: greedy */
  temperature?: number;
  repeatPenalty?: number;
  penaltyLastN?: number;
}

export class LlamaSampler {
  #ptr: Pointer | null;

  constructor(model: Model, o: LlamaSamplerOptions = {}) {
    const handle = shim().llmshim_sampler_new(
      model.handle, (o.seed ?? 0xffffffff) >>> 0, o.topK ?? 0, o.topP ?? 1, o.minP ?? 0,
      o.temperature ?? 0, o.repeatPenalty ?? 1, o.penaltyLastN ?? 64,
    ) as Pointer | null;
    if (!handle) throw new Error("cannot create a llama.cpp sampler chain");
    this.#ptr = handle;
  }

  /**
   * Samples for the token at `batchIndex` of the last decoded batch (it must have had its logits
   * flag set) and accepts the result.
   */
  sample(ctx: Context, batchIndex: number): number {
    if (!this.#ptr) throw new Error("sampler was freed");
    const token = shim().llmshim_sampler_sample(this.#ptr, ctx.handle, batchIndex);
    if (token < 0) throw new RangeError(`batch index ${batchIndex} has no logits`);
    return token;
  }

  free(): void {
    if (this.#ptr) shim().llmshim_sampler_free(this.#ptr);
    this.#ptr = null;
  }

  [Symbol.dispose](): void {
    this.free();
  }
}
