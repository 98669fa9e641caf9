// OpenAI's processors and log-probabilities as pure functions over logits rows (no native library).
import { describe, expect, test } from "bun:test";
import { applyLogitBias, logSumExp, OutputCounts, topLogprobs } from "../src/sampling/openai-processors.ts";
import { TokenSampler } from "../src/sampling/sampler.ts";

const row = (...v: number[]) => Float32Array.from(v);
const greedy = { doSample: false, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 };

describe("logit_bias", () => {
  test("adds to the named tokens only; ids outside the row are ignored", () => {
    const r = row(1, 2, 3);
    applyLogitBias(r, Int32Array.from([0, 7]), Float32Array.from([5, 9]));
    expect(Array.from(r)).toEqual([6, 2, 3]);
  });

  test("a +100 bias makes greedy pick that token; -100 keeps one out", () => {
    const biased = new TokenSampler({ ...greedy, logitBias: { ids: Int32Array.from([0]), biases: Float32Array.from([100]) } });
    expect(biased.plainGreedy).toBe(false);
    expect(biased.sample(row(1, 5, 3), null)).toBe(0);
    const banned = new TokenSampler({ ...greedy, logitBias: { ids: Int32Array.from([1]), biases: Float32Array.from([-100]) } });
    expect(banned.sample(row(1, 5, 3), null)).toBe(2);
  });
});

describe("presence and frequency penalties (OpenAI's additive rule, over generated tokens)", () => {
  test("logit -= frequency * count + presence for each generated token", () => {
    const c = new OutputCounts();
    c.add(1), c.add(1), c.add(2);
    const r = row(0, 0, 0, 0);
    c.applyPenalties(r, 0.5, 2);
    expect(Array.from(r)).toEqual([0, -(2 * 2 + 0.5), -(2 * 1 + 0.5), 0]);
  });

  test("the sampler counts what it returns: a presence penalty moves greedy off a token once it was chosen", () => {
    const s = new TokenSampler({ ...greedy, presencePenalty: 2 });
    expect(s.sample(row(3, 2, 0), null)).toBe(0);
    expect(s.sample(row(3, 2, 0), null)).toBe(1); // 3 - 2 < 2
    expect(s.sample(row(3, 2, 0), null)).toBe(0); // both penalised once: 1 vs 0
  });
});

describe("log-probabilities", () => {
  test("logSumExp is stable for huge logits and exact for small ones", () => {
    expect(logSumExp(row(1000, 1000))).toBeCloseTo(1000 + Math.log(2), 5);
    expect(logSumExp(row(0, Math.log(3)))).toBeCloseTo(Math.log(4), 6);
    expect(logSumExp(row(-Infinity, -Infinity))).toBe(-Infinity);
  });

  test("topLogprobs: the n best, best first, each <= 0, their probabilities summing to at most 1", () => {
    const r = row(0.5, 3, -1, 3, 2);
    const lse = logSumExp(r);
    const top = topLogprobs(r, 3, lse);
    expect(top.map((t) => t.token)).toEqual([1, 3, 4]);
    expect(top.every((t) => t.logprob <= 0)).toBe(true);
    expect(top.reduce((p, t) => p + Math.exp(t.logprob), 0)).toBeLessThanOrEqual(1 + 1e-9);
    expect(topLogprobs(r, 10, lse)).toHaveLength(5);
    expect(topLogprobs(r, 0, lse)).toEqual([]);
  });
});
