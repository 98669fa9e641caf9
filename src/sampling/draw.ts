/**
 * Categorical draws used after the warpers. Each function consumes exactly one
 * `rng.next()` and walks the candidates in their given order, so a fixed seed
 * reproduces the same token. Sums are in float64.
 */
import { RandomSource } from "./rng.ts";

/**
 * Draw one of `idx[0..count)` (any order) with probability proportional to
 * exp(values[idx[j]]). `weights` is scratch with >= count slots. Exactly one
 * `rng.next()` call.
 */
export function drawFromCandidates(
  values: ArrayLike<number>,
  idx: Int32Array,
  count: number,
  weights: Float64Array,
  rng: RandomSource,
): number {
  let max = -Infinity;
  let maxIdx = idx[0];
  for (let j = 0; j < count; j++) {
    if (values[idx[j]] > max) {
      max = values[idx[j]];
      maxIdx = idx[j];
    }
  }
  if (count === 1 || max === Infinity || max === -Infinity) {
    rng.next();
    return maxIdx;
  }
  let total = 0;
  for (let j = 0; j < count; j++) {
    const w = Math.exp(values[idx[j]] - max);
    weights[j] = w;
    total += w;
  }
  const target = rng.next() * total;
  let acc = 0;
  let last = 0;
  for (let j = 0; j < count; j++) {
    const w = weights[j];
    if (w <= 0) continue;
    acc += w;
    last = j;
    if (target < acc) return idx[j];
  }
  return idx[last];
}

/**
 * Draw one of `idx[0..count)` with probability proportional to
 * `weightByToken[idx[j]]` (e.g. the exponentials cached by `topPSelect`).
 * Exactly one `rng.next()` call.
 */
export function drawWeightedCandidates(
  idx: Int32Array,
  count: number,
  weightByToken: Float64Array,
  rng: RandomSource,
): number {
  let total = 0;
  for (let j = 0; j < count; j++) total += weightByToken[idx[j]];
  const target = rng.next() * total;
  let acc = 0;
  let last = idx[0];
  for (let j = 0; j < count; j++) {
    const w = weightByToken[idx[j]];
    if (w <= 0) continue;
    acc += w;
    last = idx[j];
    if (target < acc) return last;
  }
  return last;
}

/**
 * Draw from softmax(values) over the whole row without any selection.
 * `weights` is scratch with >= values.length slots. One `rng.next()` call.
 */
export function drawFromRow(values: ArrayLike<number>, weights: Float64Array, rng: RandomSource): number {
  const n = values.length;
  let max = -Infinity;
  let maxIdx = 0;
  for (let i = 0; i < n; i++) {
    if (values[i] > max) {
      max = values[i];
      maxIdx = i;
    }
  }
  if (max === Infinity || max === -Infinity) {
    rng.next();
    return maxIdx;
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const w = Math.exp(values[i] - max);
    weights[i] = w;
    total += w;
  }
  const target = rng.next() * total;
  let acc = 0;
  let last = maxIdx;
  for (let i = 0; i < n; i++) {
    const w = weights[i];
    if (w <= 0) continue;
    acc += w;
    last = i;
    if (target < acc) return i;
  }
  return last;
}
