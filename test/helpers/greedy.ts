// Plain greedy decoding straight through the native layer: the reference our engine is held to.
import { argmax } from "../../src/sampling/logits.ts";
import { Batch, Context, Model } from "../../src/native/index.ts";

/**
 * Greedy tokens for each prompt decoded alone in a fresh context (stops at n or end-of-generation).
 * `flashAttn`: the attention setting (llama.cpp's auto by default; an engine's served one to compare with it).
 */
export function greedyAlone(model: Model, prompt: ArrayLike<number>, n: number, { nCtx = 1024, flashAttn = -1 } = {}): number[] {
  using ctx = new Context(model, { nCtx, nBatch: 512, nSeqMax: 1, flashAttn });
  using batch = new Batch(512, 1);
  const out: number[] = [];
  for (let start = 0; start < prompt.length; start += 512) {
    batch.clear();
    const end = Math.min(prompt.length, start + 512);
    for (let i = start; i < end; i++) batch.add(prompt[i]!, i, 0, i === prompt.length - 1);
    if (ctx.decode(batch) !== 0) throw new Error("decode failed");
  }
  let pos = prompt.length;
  for (let k = 0; k < n; k++) {
    const tok = argmax(ctx.logitsRow(0));
    out.push(tok);
    if (model.isEog(tok)) break;
    batch.clear();
    batch.add(tok, pos++, 0, true);
    if (ctx.decode(batch) !== 0) throw new Error("decode failed");
  }
  return out;
}
