// A constraint's step in the sampling pipeline: a bitmask over the vocabulary (bit `t % 32` of word
// `t >> 5` set = token t allowed; xgrammar's layout) applied to a logits row before every other
// processor, as Hugging Face's prefix_allowed_tokens_fn does. Pure functions over typed arrays.

/** Words a mask over `nVocab` tokens needs. */
export const maskWords = (nVocab: number): number => (nVocab + 31) >>> 5;

export function maskAllows(mask: Int32Array, token: number): boolean {
  return ((mask[token >>> 5]! >>> (token & 31)) & 1) === 1;
}

/**
 * Sets the logit of every token the mask rejects to -Infinity, in place (whole words at a time:
 * a word of all ones is skipped, a word of zeros clears 32 logits). Returns how many tokens stay.
 */
export function applyTokenMask(logits: Float32Array, mask: Int32Array): number {
  const n = logits.length;
  let allowed = 0;
  for (let w = 0, base = 0; base < n; w++, base += 32) {
    const bits = mask[w]! | 0;
    const end = Math.min(32, n - base);
    if (bits === -1 && end === 32) {
      allowed += 32;
      continue;
    }
    for (let b = 0; b < end; b++) {
      if ((bits >>> b) & 1) allowed++;
      else logits[base + b] = -Infinity;
    }
  }
  return allowed;
}

/** True when every token the mask allows is one of `stops` (or none is allowed): the constrained text is complete. */
export function onlyStopsAllowed(mask: Int32Array, stops: readonly number[], nVocab: number): boolean {
  let stopBits = 0;
  for (const t of stops) if (t < nVocab && maskAllows(mask, t)) stopBits++;
  let total = 0;
  const words = maskWords(nVocab);
  for (let w = 0; w < words; w++) {
    let x = mask[w]! | 0;
    if (w === words - 1 && nVocab % 32 !== 0) x &= (1 << nVocab % 32) - 1; // bits past the vocabulary
    if (x === 0) continue;
    x = x - ((x >>> 1) & 0x55555555);
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    total += (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    if (total > stopBits) return false;
  }
  return total === stopBits;
}
