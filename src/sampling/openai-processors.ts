// OpenAI's logit processors, as pure functions over a logits row (in place):
//   logit_bias:                     logit[t] += bias[t]
//   presence and frequency penalty: logit[t] -= frequency * count[t] + presence * (count[t] > 0),
//                                   counting the tokens generated so far (OpenAI's additive rule,
//                                   over the output as vLLM applies it; the prompt is not counted)
// and the log-probabilities returned with `logprobs`, from the raw row.

/** Adds each bias to its token's logit; ids outside the row are ignored (they are refused earlier). */
export function applyLogitBias(logits: Float32Array, ids: Int32Array, biases: Float32Array): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]!;
    if (t >= 0 && t < logits.length) logits[t] = logits[t]! + biases[i]!;
  }
}

/** Counts of generated tokens, sparse: O(distinct generated) to apply. */
export class OutputCounts {
  readonly #counts = new Map<number, number>();
  add(token: number): void {
    this.#counts.set(token, (this.#counts.get(token) ?? 0) + 1);
  }
  get(token: number): number {
    return this.#counts.get(token) ?? 0;
  }
  /** logit[t] -= frequency * count[t] + presence, for every generated t */
  applyPenalties(logits: Float32Array, presence: number, frequency: number): void {
    for (const [t, n] of this.#counts) if (t < logits.length) logits[t] = logits[t]! - (frequency * n + presence);
  }
}

/** log(sum(exp(row))), stable; -Infinity for a row of -Infinity */
export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  if (!Number.isFinite(max)) return max;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return max + Math.log(sum);
}

/** The `n` most likely tokens of a raw row with their log-probabilities, best first. */
export function topLogprobs(row: Float32Array, n: number, lse: number): { token: number; logprob: number }[] {
  const best: { token: number; logit: number }[] = [];
  if (n <= 0) return [];
  for (let t = 0; t < row.length; t++) {
    const v = row[t]!;
    if (best.length === n && v <= best[n - 1]!.logit) continue;
    let at = best.length < n ? best.length : n - 1;
    best[at] = { token: t, logit: v };
    while (at > 0 && best[at - 1]!.logit < v) (best[at] = best[at - 1]!), (best[--at] = { token: t, logit: v });
  }
  return best.map((b) => ({ token: b.token, logprob: Math.min(0, b.logit - lse) }));
}
