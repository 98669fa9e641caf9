// A constraint's step in the sampling pipeline: a bitmask over the vocabulary (bit `t % 32` of word
// `t >> 5` set = token t allowed; xgrammar's layout) applied to a logits row before every other
// processor, as Hugging Face's prefix_allowed_tokens_fn does. Pure functions over typed arrays.

/** Words a mask over `nVocab` tokens needs. */
export const maskWords = (nVocab: number): number => (nVocab + 31) >>> 5;

export function maskAllows(mask: Int32Array, token: number): boolean {
  return ((mask[token >>> 5]! >>> (token & 31)) & 1) === 1;
}

/**
 * Sets the logit of every token the mask rejects to -Infinity, in place, and returns how many tokens
 * stay. Runs of all-allowed words are skipped and runs of all-rejected ones filled at once: under a
 * grammar most words are one or the other, so this is the decode loop's cheapest form of the step.
 */
export function applyTokenMask(logits: Float32Array, mask: Int32Array): number {
  const n = logits.length;
  const words = Math.min(mask.length, maskWords(n));
  let allowed = 0;
  let w = 0;
  while (w < words) {
    const bits = mask[w]! | 0;
    if (bits === -1 || bits === 0) {
      let end = w + 1;
      while (end < words && (mask[end]! | 0) === bits) end++;
      const lo = w << 5, hi = Math.min(n, end << 5);
      if (bits === 0) logits.fill(-Infinity, lo, hi);
      else allowed += hi - lo;
      w = end;
      continue;
    }
    const base = w << 5, stop = Math.min(n, base + 32);
    for (let i = base; i < stop; i++) {
      if ((bits >>> (i - base)) & 1) allowed++;
      else logits[i] = -Infinity;
    }
    w++;
  }
  if (n > words << 5) logits.fill(-Infinity, words << 5, n); // a short mask: the rest is not allowed
  return allowed;
}

/**
 * The tokens below `nVocab` the mask allows, in increasing order, into `out` (length >= nVocab);
 * returns how many, or -1 as soon as there are more than `limit`.
 */
export function allowedIds(mask: Int32Array, nVocab: number, out: Int32Array, limit = nVocab): number {
  let count = 0;
  const words = Math.min(mask.length, maskWords(nVocab));
  for (let w = 0; w < words; w++) {
    let bits = mask[w]! | 0;
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits & -bits); // lowest set bit
      const t = (w << 5) + bit;
      if (t >= nVocab) return count;
      if (count === limit) return -1;
      out[count++] = t;
      bits &= bits - 1;
    }
  }
  return count;
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
