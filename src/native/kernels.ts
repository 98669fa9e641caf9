// Native versions of sampling kernels, for arrays the caller owns (tests, benchmarks). The engine's
// hot path calls them on llama.cpp's logits buffer through Context.argmaxRow instead.
import { ptr } from "bun:ffi";
import { shim } from "./lib.ts";

/** torch.argmax of `x` (first index of the largest value, NaN never wins); `scalar` forces the reference loop. */
export function nativeArgmax(x: Float32Array, scalar = false): number {
  if (x.length === 0) return 0;
  const s = shim();
  return scalar ? s.llmshim_argmax_scalar(ptr(x), x.length) : s.llmshim_argmax(ptr(x), x.length);
}
