import { describe, expect, test } from "bun:test";
import {
  applyRepetitionPenalty,
  applyRepetitionPenaltyDistinct,
  argmax,
  logSoftmax,
  logSoftmaxInPlace,
  logSumExp,
  scaleByTemperature,
  softmaxInPlace,
  topKIndices,
} from "../src/sampling/logits.ts";
import {
  topKCandidates,
  topKFilterInPlace,
  topPCut,
  topPFilterInPlace,
  topPSelect,
} from "../src/sampling/warpers.ts";
import { Rng } from "../src/sampling/rng.ts";
import { TokenHistory } from "../src/sampling/token-history.ts";

const f32 = (xs: number[]) => Float32Array.from(xs);
const sortedSet = (idx: Int32Array, n: number) => Array.from(idx.subarray(0, n)).sort((a, b) => a - b);

/** Plain HF TopPLogitsWarper: ascending sort, softmax, cumsum, remove <= 1 - p, keep the top one. */
function naiveTopPKeep(values: number[], topP: number): number[] {
  // ascending by value; among equal values the higher index comes first (it is "lower ranked")
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b] || b - a);
  const max = Math.max(...values);
  const exps = order.map((i) => Math.exp(values[i] - max));
  const total = exps.reduce((s, x) => s + x, 0);
  const keep: number[] = [];
  let cum = 0;
  order.forEach((i, pos) => {
    cum += exps[pos] / total;
    const isLast = pos === order.length - 1;
    if (cum > 1 - topP || isLast) keep.push(i);
  });
  return keep.sort((a, b) => a - b);
}

function randomRow(rng: Rng, n: number, quantize = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = rng.next() * 8 - 4;
    out.push(quantize > 0 ? Math.round(v * quantize) / quantize : v);
  }
  return Array.from(f32(out));
}

describe("argmax", () => {
  test("first maximum wins ties, NaN ignored", () => {
    expect(argmax(f32([1, 3, 3, 2]))).toBe(1);
    expect(argmax(f32([NaN, -1, 5, NaN]))).toBe(2);
    expect(argmax(f32([-Infinity, -Infinity]))).toBe(0);
  });
});

describe("repetition penalty (HF rule)", () => {
  test("positive logits divided, negative multiplied, duplicates once", () => {
    const logits = f32([2, -2, 0.5, 1, 0]);
    applyRepetitionPenalty(logits, [0, 1, 1, 0, 0, 4], 2);
    expect(Array.from(logits)).toEqual([1, -4, 0.5, 1, 0]);
  });
  test("Int32Array input and out-of-range ids ignored", () => {
    const logits = f32([3, -1.5, 6]);
    applyRepetitionPenalty(logits, Int32Array.from([2, 2, 7, -1]), 1.5);
    expect(Array.from(logits)).toEqual([3, -1.5, 4]);
  });
  test("penalty 1 is a no-op; TokenHistory distinct ids match the Set version", () => {
    const a = f32([1, -1, 2, -2, 3]);
    applyRepetitionPenalty(a, [0, 1], 1);
    expect(Array.from(a)).toEqual([1, -1, 2, -2, 3]);
    const h = new TokenHistory([4, 1, 4, 3], 5);
    h.push(1);
    h.push(0);
    expect(h.distinctCount).toBe(4);
    expect(h.length).toBe(6);
    expect(h.has(4) && h.has(0) && !h.has(2)).toBe(true);
    const b = f32([1, -1, 2, -2, 3]);
    const c = f32([1, -1, 2, -2, 3]);
    applyRepetitionPenaltyDistinct(b, h.distinctIds, h.distinctCount, 1.3);
    applyRepetitionPenalty(c, h.view(), 1.3);
    expect(Array.from(b)).toEqual(Array.from(c));
    expect(b[2]).toBe(2);
    expect(b[4]).toBeCloseTo(3 / 1.3, 6);
    expect(b[3]).toBeCloseTo(-2 * 1.3, 6);
  });
  test("TokenHistory's lazy index stays exact across pushes between questions", () => {
    const h = new TokenHistory([], 8);
    const ids: number[] = [];
    let state = 7;
    for (let i = 0; i < 400; i++) {
      state = (state * 48271) % 2147483647;
      const t = state % (i < 200 ? 30 : 300); // later ids outgrow the presized bitmap
      h.push(t);
      ids.push(t);
      if (i % 37 === 0 || i === 399) {
        const distinct = [...new Set(ids)];
        expect(h.distinctCount).toBe(distinct.length);
        expect(Array.from(h.distinctIds.subarray(0, h.distinctCount))).toEqual(distinct); // first-seen order
        expect(h.has(t) && !h.has(1000)).toBe(true);
      }
    }
    expect(Array.from(h.view())).toEqual(ids);
  });
});

describe("temperature, softmax, log-softmax", () => {
  test("temperature divides", () => {
    const x = f32([1, 2, -3]);
    scaleByTemperature(x, 0.5);
    expect(Array.from(x)).toEqual([2, 4, -6]);
  });
  test("hand-computed softmax of [1, 2, 3]", () => {
    expect(logSumExp([1, 2, 3])).toBeCloseTo(3.40760596444438, 10);
    const p = f32([1, 2, 3]);
    softmaxInPlace(p);
    expect(p[0]).toBeCloseTo(0.09003057, 6);
    expect(p[1]).toBeCloseTo(0.24472847, 6);
    expect(p[2]).toBeCloseTo(0.66524096, 6);
    const l = f32([1, 2, 3]);
    logSoftmaxInPlace(l);
    expect(l[0]).toBeCloseTo(-2.40760596, 6);
    expect(l[1]).toBeCloseTo(-1.40760596, 6);
    expect(l[2]).toBeCloseTo(-0.40760596, 6);
  });
  test("log-softmax into a separate buffer, -inf entries, huge values", () => {
    const src = f32([1000, 1000, -Infinity]);
    const out = new Float32Array(3);
    logSoftmax(src, out);
    expect(out[0]).toBeCloseTo(-Math.LN2, 6);
    expect(out[2]).toBe(-Infinity);
    expect(src[0]).toBe(1000);
    expect(logSumExp([-Infinity, -Infinity])).toBe(-Infinity);
  });
});

describe("topKIndices", () => {
  test("matches a naive stable sort on random data with ties", () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 60; trial++) {
      const n = 1 + Math.floor(rng.next() * 300);
      const row = f32(randomRow(rng, n, trial % 2 === 0 ? 2 : 0));
      const naive = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
      for (const k of [1, 2, 5, 40, n, n + 3]) {
        const out = new Int32Array(n + 3);
        const m = topKIndices(row, k, out);
        expect(m).toBe(Math.min(k, n));
        expect(Array.from(out.subarray(0, m))).toEqual(naive.slice(0, m));
      }
    }
  });
  test("respects an explicit length", () => {
    const out = new Int32Array(2);
    expect(topKIndices(f32([1, 2, 9, 9]), 2, out, 2)).toBe(2);
    expect(Array.from(out)).toEqual([1, 0]);
  });
});

describe("top-k (HF TopKLogitsWarper)", () => {
  test("ties at the k-th value are all kept", () => {
    const row = f32([5, 3, 3, 3, 1]);
    const out = new Int32Array(5);
    expect(topKCandidates(row, 2, out)).toBe(4);
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 1, 2, 3]);
    const filtered = f32([5, 3, 3, 3, 1]);
    topKFilterInPlace(filtered, 2, new Int32Array(5));
    expect(Array.from(filtered)).toEqual([5, 3, 3, 3, -Infinity]);
  });
  test("k = 0 behaves like min_tokens_to_keep = 1", () => {
    const out = new Int32Array(3);
    expect(topKCandidates(f32([0, 2, 1]), 0, out)).toBe(1);
    expect(out[0]).toBe(1);
  });
});

describe("top-p (HF TopPLogitsWarper)", () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const row = f32(probs.map(Math.log));
  const keep = (p: number) => {
    const out = new Int32Array(4);
    return sortedSet(out, topPSelect(row, p, out, 1));
  };
  test("boundary token that crosses top_p is kept", () => {
    expect(keep(0.7)).toEqual([0, 1]); // 0.5 < 0.7, then 0.8 crosses: keep token 1
    expect(keep(0.55)).toEqual([0, 1]);
    expect(keep(0.45)).toEqual([0]); // 0.5 already >= 0.45
    expect(keep(0.9)).toEqual([0, 1, 2]);
    expect(keep(0.99)).toEqual([0, 1, 2, 3]);
  });
  test("always keeps at least one token", () => {
    expect(keep(0)).toEqual([0]);
    expect(keep(1e-9)).toEqual([0]);
  });
  test("filter in place", () => {
    const r = Float32Array.from(row);
    topPFilterInPlace(r, 0.7, new Int32Array(4));
    expect(r[2]).toBe(-Infinity);
    expect(r[3]).toBe(-Infinity);
    expect(r[0]).toBe(row[0]);
  });
  test("topPCut on a top-k candidate list renormalises over the candidates", () => {
    const idx = Int32Array.from([0, 1, 2, 3]);
    // over candidates {0,1}: p = 0.625, 0.375 -> top_p 0.6 keeps only token 0
    expect(topPCut(row, idx, 2, 0.6)).toBe(1);
    expect(topPCut(row, idx, 2, 0.7)).toBe(2);
    expect(topPCut(row, idx, 4, 0.7)).toBe(2);
  });
  test("matches the naive HF algorithm on random rows (heap and bucket paths)", () => {
    const rng = new Rng(99);
    for (let trial = 0; trial < 80; trial++) {
      const n = 2 + Math.floor(rng.next() * 400);
      const values = randomRow(rng, n, trial % 3 === 0 ? 4 : 0);
      if (trial % 4 === 1) for (let i = 0; i < n; i += 3) values[i] = -Infinity;
      const topP = [0.1, 0.5, 0.9, 0.95, 0.999][trial % 5];
      const out = new Int32Array(n);
      const count = topPSelect(f32(values), topP, out, 1 + (trial % 7));
      expect(sortedSet(out, count)).toEqual(naiveTopPKeep(values, topP));
    }
  });
});
