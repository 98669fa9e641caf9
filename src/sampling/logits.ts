/**
 * Pure numeric helpers over logit rows (Float32Array). None of them allocates
 * memory proportional to the vocabulary; callers pass scratch buffers where one
 * is needed.
 *
 * Float32 semantics: results written into a Float32Array are rounded to float32
 * on store, like torch's float32 tensors. Scalars that torch would cast to the
 * tensor dtype (penalty, temperature) are passed through `Math.fround` by callers.
 */

/** Index of the largest value; the first one on ties (torch.argmax). NaN never wins. */
export function argmax(logits: ArrayLike<number>): number {
  const n = logits.length;
  let best = 0;
  while (best < n && logits[best] !== logits[best]) best++; // skip leading NaN
  if (best === n) return 0;
  let bestVal = logits[best];
  for (let i = best + 1; i < n; i++) {
    const v = logits[i];
    if (v > bestVal) {
      bestVal = v;
      best = i;
    }
  }
  return best;
}

/** argmax, or -1 when the largest value occurs more than once */
export function uniqueArgmax(logits: ArrayLike<number>): number {
  const best = argmax(logits);
  const top = logits[best];
  for (let i = best + 1; i < logits.length; i++) if (logits[i] === top) return -1;
  return best;
}

/**
 * HF RepetitionPenaltyLogitsProcessor on already-distinct token ids:
 * `score < 0 ? score * penalty : score / penalty`, in place. `ids[0..count)` must
 * not contain duplicates (each token is penalised exactly once). Out-of-range ids
 * are ignored.
 */
export function applyRepetitionPenaltyDistinct(
  logits: Float32Array,
  ids: ArrayLike<number>,
  count: number,
  penalty: number,
): void {
  if (penalty === 1) return;
  // float32-safe for every penalty the API admits: a penalty that rounds to 0 or inf in float32
  // (1e-88, 1e300) is held at the smallest normal / largest finite value, and results are kept
  // finite (1e-88 made seen logits +inf, which read as a broken model)
  const p = Math.min(F32_MAX, Math.max(F32_MIN_NORMAL, Math.fround(penalty)));
  const n = logits.length;
  for (let j = 0; j < count; j++) {
    const t = ids[j];
    if (t < 0 || t >= n) continue;
    const v = logits[t];
    if (v !== v) continue; // NaN stays NaN
    const r = v < 0 ? v * p : v / p;
    logits[t] = r > F32_MAX ? F32_MAX : r < -F32_MAX ? -F32_MAX : r;
  }
}

const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * HF repetition penalty over every distinct token in `seenTokens` (prompt and
 * generated ids; duplicates are counted once), in place. Allocates a Set of the
 * distinct ids; the hot path should use `TokenHistory` + `applyRepetitionPenaltyDistinct`.
 */
export function applyRepetitionPenalty(
  logits: Float32Array,
  seenTokens: Iterable<number> | Int32Array,
  penalty: number,
): void {
  if (penalty === 1) return;
  if (!(penalty > 0)) throw new RangeError(`repetition penalty must be > 0, got ${penalty}`);
  const distinct = new Set<number>(seenTokens);
  const ids = Int32Array.from(distinct);
  applyRepetitionPenaltyDistinct(logits, ids, ids.length, penalty);
}

/** log(sum(exp(values))), computed stably in float64. */
export function logSumExp(values: ArrayLike<number>): number {
  const n = values.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (values[i] > max) max = values[i];
  if (max === -Infinity || max === Infinity) return max;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(values[i] - max);
  return max + Math.log(sum);
}

/**
 * `out[i] = src[i] - max - log(sum(exp(src - max)))` (torch's formulation).
 * `out` may be `src`. A row of all -Infinity is copied through unchanged.
 */
export function logSoftmax(src: ArrayLike<number>, out: Float32Array): void {
  const n = src.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (src[i] > max) max = src[i];
  if (max === -Infinity) {
    for (let i = 0; i < n; i++) out[i] = src[i];
    return;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(src[i] - max);
  const logSum = Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = src[i] - max - logSum;
}

/** In-place log-softmax of a row. */
export function logSoftmaxInPlace(values: Float32Array): void {
  logSoftmax(values, values);
}

/** In-place softmax of a row (sum accumulated in float64). */
export function softmaxInPlace(values: Float32Array): void {
  const n = values.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (values[i] > max) max = values[i];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(values[i] - max);
  for (let i = 0; i < n; i++) values[i] = Math.exp(values[i] - max) / sum;
}

/**
 * Divides a row by a temperature in place (float32, like `scores / temperature`). Returns -1, or,
 * when the largest value overflowed to ±inf (a tiny temperature on large logits), the argmax of
 * the values before scaling: the distribution is then one-hot there, which the overflowed row can
 * no longer tell. Same single pass.
 */
export function scaleByTemperature(values: Float32Array, temperature: number): number {
  if (temperature === 1) return -1;
  const t = Math.fround(temperature);
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > max) (max = v), (best = i);
    values[i] = v / t;
  }
  // the largest overflowed (to +inf, or to -inf when every logit is hugely negative): one-hot
  return values.length > 0 && !Number.isFinite(values[best]!) && Number.isFinite(max) ? best : -1;
}

// ---- partial selection -----------------------------------------------------

/** NaN sorts below everything. */
function keyOf(v: number): number {
  return v === v ? v : -Infinity;
}

/** True when element a ranks below element b: lower value, or equal value and higher index. */
function ranksBelow(values: ArrayLike<number>, a: number, b: number): boolean {
  const va = keyOf(values[a]);
  const vb = keyOf(values[b]);
  return va < vb || (va === vb && a > b);
}

function siftUp(values: ArrayLike<number>, heap: Int32Array, pos: number): void {
  const item = heap[pos];
  while (pos > 0) {
    const parent = (pos - 1) >> 1;
    if (!ranksBelow(values, item, heap[parent])) break;
    heap[pos] = heap[parent];
    pos = parent;
  }
  heap[pos] = item;
}

function siftDown(values: ArrayLike<number>, heap: Int32Array, pos: number, size: number): void {
  const item = heap[pos];
  for (;;) {
    let child = 2 * pos + 1;
    if (child >= size) break;
    const right = child + 1;
    if (right < size && ranksBelow(values, heap[right], heap[child])) child = right;
    if (!ranksBelow(values, heap[child], item)) break;
    heap[pos] = heap[child];
    pos = child;
  }
  heap[pos] = item;
}

/**
 * Indices of the `k` largest values, written to `out[0..m)` sorted by value
 * descending, ties broken by lower index first (NaN ranks lowest); returns
 * m = min(k, n). Only `values[0..n)` is considered (`n` defaults to
 * values.length). Uses `out` as a size-k min-heap: O(n log k) time, no
 * allocation. `out.length` must be >= m.
 */
export function topKIndices(
  values: ArrayLike<number>,
  k: number,
  out: Int32Array,
  n: number = values.length,
): number {
  const m = Math.min(Math.max(0, Math.floor(k)), n);
  if (m === 0) return 0;
  if (out.length < m) throw new RangeError(`topKIndices: out has ${out.length} slots, needs ${m}`);
  for (let i = 0; i < m; i++) {
    out[i] = i;
    siftUp(values, out, i);
  }
  let rootVal = keyOf(values[out[0]]);
  for (let i = m; i < n; i++) {
    // Any later index loses ties against the heap, so only strictly greater values enter.
    if (values[i] > rootVal) {
      out[0] = i;
      siftDown(values, out, 0, m);
      rootVal = keyOf(values[out[0]]);
    }
  }
  for (let end = m - 1; end > 0; end--) {
    const worst = out[0];
    out[0] = out[end];
    out[end] = worst;
    siftDown(values, out, 0, end);
  }
  return m;
}

/**
 * Sort an index array in place by value descending, ties by lower index first
 * (heap sort; no allocation). Pass a subarray to sort a segment.
 */
export function sortIndicesByValueDesc(values: ArrayLike<number>, idx: Int32Array): void {
  const n = idx.length;
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(values, idx, i, n);
  for (let end = n - 1; end > 0; end--) {
    const worst = idx[0];
    idx[0] = idx[end];
    idx[end] = worst;
    siftDown(values, idx, 0, end);
  }
}
