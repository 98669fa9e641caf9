/**
 * HF logits warpers (TopK / TopP) expressed as candidate selection over one row,
 * plus in-place filtering variants (used per beam by beam sampling).
 *
 * Ordering convention everywhere: value descending, ties by lower token index.
 * HF's sort is not stable, so on exact ties at a cut boundary any fixed rule is
 * as faithful as another; this one is deterministic.
 */
import { sortIndicesByValueDesc, topKIndices } from "./logits.ts";

/**
 * HF TopKLogitsWarper keep-set: every index whose value is >= the k-th largest
 * value (HF removes only `scores < kth_value`, so ties at the threshold survive).
 * Writes the indices to `out` sorted descending and returns their count (>= k
 * when the row has at least k entries). `out` needs room for the tie overflow:
 * give it `values.length` slots.
 */
export function topKCandidates(values: ArrayLike<number>, k: number, out: Int32Array): number {
  const n = values.length;
  const m = topKIndices(values, Math.max(1, k), out);
  if (m === 0 || m === n) return m;
  const threshold = values[out[m - 1]];
  if (threshold !== threshold) return m;
  let count = 0;
  if (threshold === -Infinity) {
    // fewer than k finite logits (a constraint's mask): the -Infinity ties would weigh nothing, and
    // keeping them all made the draw a pass over the whole vocabulary
    for (let i = 0; i < n; i++) if (values[i] > -Infinity) count++;
    return count === 0 || count === m ? m : topKIndices(values, count, out);
  }
  for (let i = 0; i < n; i++) if (values[i] >= threshold) count++;
  return count === m ? m : topKIndices(values, count, out);
}

/**
 * HF TopPLogitsWarper keep-set over a whole row. HF sorts ascending, takes the
 * cumulative softmax and removes tokens whose cumulative probability is
 * <= 1 - top_p, always keeping the most likely token. Seen from the top, a token
 * is kept iff the mass of itself plus everything ranked below it exceeds
 * 1 - top_p, so the token that crosses top_p is kept. -Infinity entries are
 * never kept (except as the single forced token of an all -Infinity row).
 *
 * No full sort: a size-`fastK` heap handles small nuclei; otherwise tokens are
 * bucketed by log-probability (width 1/64 nat) in one pass, whole buckets above
 * the boundary are kept, and only the boundary bucket is sorted. O(vocab)
 * besides that bucket. Sums in float64.
 *
 * Writes the kept indices to `out[0..count)` and returns count. Order: sorted
 * descending when the fast path applies; otherwise unsorted, but in all cases
 * `out[count - 1]` is the lowest-ranked kept token (value desc, index asc).
 * `out.length` must be >= values.length. If `expOut` (>= values.length slots)
 * is given, it receives exp(values[i] - max) for every i, and the exponentials
 * are computed only once (callers can reuse them as draw weights).
 */
export function topPSelect(
  values: ArrayLike<number>,
  topP: number,
  out: Int32Array,
  fastK = 64,
  expOut: Float64Array | null = null,
): number {
  const n = values.length;
  if (n === 0) return 0;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (values[i] > max) max = values[i];
  if (max === -Infinity || max === Infinity) return topKIndices(values, 1, out);
  let total = 0;
  // (if/else rather than a conditional expression: JSC optimises this loop far better)
  if (expOut !== null) {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v === -Infinity) {
        expOut[i] = 0;
      } else {
        const e = Math.exp(v - max);
        expOut[i] = e;
        total += e;
      }
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v !== -Infinity) total += Math.exp(v - max);
    }
  }
  const removeAtOrBelow = 1 - topP;

  const m = topKIndices(values, Math.min(Math.max(1, fastK), n), out);
  let before = 0;
  for (let j = 0; j < m; j++) {
    const v = values[out[j]];
    if (j > 0 && (v === -Infinity || (total - before) / total <= removeAtOrBelow)) return j;
    before += Math.exp(v - max);
  }
  if (m === n) return n;

  const mass = bucketMass;
  const count = bucketCount;
  mass.fill(0);
  count.fill(0);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const b = bucketOf(max, v);
    count[b]++;
    if (expOut !== null) {
      mass[b] += expOut[i];
    } else if (v !== -Infinity) {
      mass[b] += Math.exp(v - max);
    }
  }
  // Boundary bucket: the first one after which the next token would be removed.
  let bb = LAST_BUCKET;
  let cumBefore = 0;
  let above = 0;
  for (let b = 0; b < LAST_BUCKET; b++) {
    if ((total - (cumBefore + mass[b])) / total <= removeAtOrBelow) {
      bb = b;
      break;
    }
    cumBefore += mass[b];
    above += count[b];
  }
  let k = 0;
  let t = above;
  for (let i = 0; i < n; i++) {
    const b = bucketOf(max, values[i]);
    if (b < bb) out[k++] = i;
    else if (b === bb) out[t++] = i;
  }
  const seg = out.subarray(above, t);
  sortIndicesByValueDesc(values, seg);
  before = cumBefore;
  let kept = 0;
  for (; kept < seg.length; kept++) {
    const v = values[seg[kept]];
    if (above + kept > 0 && (v === -Infinity || (total - before) / total <= removeAtOrBelow)) break;
    before += Math.exp(v - max);
  }
  const result = above + kept;
  if (kept === 0 && above > 1) moveLowestRankedToEnd(values, out, above);
  return result;
}

/** Bucket of a value by its distance below the max (NaN and far values: last bucket). */
function bucketOf(max: number, v: number): number {
  const d = (max - v) * BUCKETS_PER_NAT;
  if (d < LAST_BUCKET) return Math.floor(d);
  return LAST_BUCKET;
}

const BUCKETS_PER_NAT = 64;
const LAST_BUCKET = 4095; // logits more than 64 nats below the max share the last bucket
const bucketMass = new Float64Array(LAST_BUCKET + 1);
const bucketCount = new Int32Array(LAST_BUCKET + 1);

function moveLowestRankedToEnd(values: ArrayLike<number>, idx: Int32Array, count: number): void {
  let low = 0;
  for (let j = 1; j < count; j++) {
    const a = values[idx[j]];
    const b = values[idx[low]];
    if (a < b || (a === b && idx[j] > idx[low])) low = j;
  }
  const tmp = idx[count - 1];
  idx[count - 1] = idx[low];
  idx[low] = tmp;
}

/**
 * Cut an already-sorted candidate list (`idx[0..count)`, descending) to its
 * top-p nucleus, where all tokens outside the list have probability 0 (e.g.
 * after top-k). Same rule as `topPSelect`. Returns the new count (>= 1).
 */
export function topPCut(
  values: ArrayLike<number>,
  idx: Int32Array,
  count: number,
  topP: number,
): number {
  if (count <= 1) return count;
  const max = values[idx[0]];
  if (max === -Infinity || max === Infinity || max !== max) return 1;
  let total = 0;
  for (let j = 0; j < count; j++) total += Math.exp(values[idx[j]] - max);
  const removeAtOrBelow = 1 - topP;
  let before = 0;
  for (let j = 0; j < count; j++) {
    const v = values[idx[j]];
    if (j > 0 && (v === -Infinity || (total - before) / total <= removeAtOrBelow)) return j;
    before += Math.exp(v - max);
  }
  return count;
}

/** HF TopKLogitsWarper in place: values below the k-th largest become -Infinity. */
export function topKFilterInPlace(values: Float32Array, k: number, scratch: Int32Array): void {
  const n = values.length;
  const m = topKIndices(values, Math.max(1, k), scratch);
  if (m === 0 || m === n) return;
  const threshold = values[scratch[m - 1]];
  for (let i = 0; i < n; i++) if (values[i] < threshold) values[i] = -Infinity;
}

/** HF TopPLogitsWarper in place: tokens outside the nucleus become -Infinity. */
export function topPFilterInPlace(
  values: Float32Array,
  topP: number,
  scratch: Int32Array,
  expScratch: Float64Array | null = null,
): void {
  const n = values.length;
  const kept = topPSelect(values, topP, scratch, 64, expScratch);
  if (kept === 0 || kept === n) return;
  const lastIdx = scratch[kept - 1];
  const lastVal = values[lastIdx];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v < lastVal || (v === lastVal && i > lastIdx)) values[i] = -Infinity;
  }
}
