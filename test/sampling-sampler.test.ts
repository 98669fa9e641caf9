import { describe, expect, test } from "bun:test";
import { TokenSampler, type SamplerConfig } from "../src/sampling/sampler.ts";
import { TokenHistory } from "../src/sampling/token-history.ts";
import { argmax } from "../src/sampling/logits.ts";
import { Rng } from "../src/sampling/rng.ts";

const base: SamplerConfig = { doSample: true, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 };
const make = (c: Partial<SamplerConfig>) => new TokenSampler({ ...base, ...c });
const f32 = (xs: number[]) => Float32Array.from(xs);

function randomLogits(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() * 10 - 5;
  return out;
}

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Empirical frequencies of `draws` samples from a fresh copy of `logits` each time. */
function frequencies(sampler: TokenSampler, logits: number[], draws: number): number[] {
  const counts = new Array(logits.length).fill(0);
  const row = new Float32Array(logits.length);
  for (let i = 0; i < draws; i++) {
    row.set(logits);
    counts[sampler.sample(row, null)]++;
  }
  return counts.map((c) => c / draws);
}

function maxAbsDiff(a: number[], b: number[]): number {
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])));
}

describe("TokenSampler greedy", () => {
  test("doSample false and temperature 0 are argmax", () => {
    const rng = new Rng(3);
    for (let i = 0; i < 20; i++) {
      const row = randomLogits(rng, 1000);
      const expected = argmax(row);
      expect(make({ doSample: false, temperature: 0.7 }).sample(Float32Array.from(row), null)).toBe(expected);
      expect(make({ temperature: 0 }).sample(Float32Array.from(row), null)).toBe(expected);
    }
  });
  test("repetition penalty applies in greedy mode", () => {
    const hist = new TokenHistory([0, 0, 5]);
    const s = make({ doSample: false, repetitionPenalty: 2 });
    expect(s.sample(f32([3, 2, -1]), hist)).toBe(1); // 3 / 2 = 1.5 < 2
    expect(s.sample(f32([3, 2, -1]), null)).toBe(0);
  });
  test("works in place on the row (penalty and temperature)", () => {
    const row = f32([4, -2, 1]);
    make({ temperature: 0.5, repetitionPenalty: 2, seed: 9 }).sample(row, new TokenHistory([0, 1]));
    expect(Array.from(row)).toEqual([4, -8, 2]);
  });
});

describe("TokenSampler sampling edge cases", () => {
  test("top_k 1 picks the largest logit even where temperature rounds it into a tie (a property-test counterexample)", () => {
    for (let seed = 0; seed < 20; seed++) {
      expect(make({ doSample: true, temperature: 1.9999999403953552, topK: 1, topP: 1, seed }).sample(Float32Array.from([1.401298464324817e-45, 0]), null)).toBe(0);
    }
  });

  test("top_k = 1 equals argmax", () => {
    const rng = new Rng(11);
    const s = make({ topK: 1, temperature: 1.5, seed: 5 });
    for (let i = 0; i < 50; i++) {
      const row = randomLogits(rng, 5000);
      expect(s.sample(Float32Array.from(row), null)).toBe(argmax(row));
    }
  });
  test("tiny top_p equals argmax (with and without top_k)", () => {
    const rng = new Rng(12);
    const a = make({ topP: 1e-6, seed: 6 });
    const b = make({ topP: 0, topK: 40, temperature: 2, seed: 7 });
    for (let i = 0; i < 50; i++) {
      const row = randomLogits(rng, 5000);
      expect(a.sample(Float32Array.from(row), null)).toBe(argmax(row));
      expect(b.sample(Float32Array.from(row), null)).toBe(argmax(row));
    }
  });
  test("fixed seed reproduces the draws; another seed differs", () => {
    const rng = new Rng(13);
    const rows = Array.from({ length: 40 }, () => randomLogits(rng, 2000));
    const run = (seed: number) => {
      const s = make({ temperature: 0.8, topK: 40, topP: 0.95, seed });
      return rows.map((r) => s.sample(Float32Array.from(r), null));
    };
    expect(run(1234)).toEqual(run(1234));
    expect(run(1234)).not.toEqual(run(4321));
  });
  test("rejects invalid parameters", () => {
    expect(() => make({ topP: 1.5 })).toThrow();
    expect(() => make({ topK: -1 })).toThrow();
    expect(() => make({ temperature: -0.1 })).toThrow();
    expect(() => make({ repetitionPenalty: 0 })).toThrow();
  });
});

describe("TokenSampler distributions (20k draws)", () => {
  const logits = [1, 2, 0.5, -1, 3, 0];
  const N = 20000;
  const tol = 0.015; // ~4 sigma for p(1-p)/N at N = 20k

  test("temperature only matches softmax(logits / T)", () => {
    const T = 0.7;
    const freq = frequencies(make({ temperature: T, seed: 100 }), logits, N);
    const expected = softmax(logits.map((x) => Math.fround(Math.fround(x) / Math.fround(T))));
    expect(maxAbsDiff(freq, expected)).toBeLessThan(tol);
    // chi-square with 5 degrees of freedom; 99.9% quantile is 20.5
    const chi2 = freq.reduce((s, f, i) => s + ((f - expected[i]) * N) ** 2 / (expected[i] * N), 0);
    expect(chi2).toBeLessThan(20.5);
  });

  test("top_k = 3 renormalises over the three largest", () => {
    const freq = frequencies(make({ topK: 3, seed: 101 }), logits, N);
    const kept = softmax([logits[4], logits[1], logits[0]]);
    const expected = [kept[2], kept[1], 0, 0, kept[0], 0];
    expect(maxAbsDiff(freq, expected)).toBeLessThan(tol);
    expect(freq[2] + freq[3] + freq[5]).toBe(0);
  });

  test("top_p keeps the crossing token and renormalises", () => {
    const p = softmax(logits); // sorted: 4 (0.57), 1 (0.21), 0 (0.08), ...
    const topP = p[4] + p[1] + 0.5 * p[0]; // token 0 crosses top_p -> kept
    const freq = frequencies(make({ topP, seed: 102 }), logits, N);
    const z = p[4] + p[1] + p[0];
    const expected = [p[0] / z, p[1] / z, 0, 0, p[4] / z, 0];
    expect(maxAbsDiff(freq, expected)).toBeLessThan(tol);
    expect(freq[2] + freq[3] + freq[5]).toBe(0);
  });

  test("temperature + top_k + top_p combined (HF order)", () => {
    const T = 2;
    const scaled = logits.map((x) => x / T);
    // top_k = 4 keeps tokens 4, 1, 0, 2; top_p over those renormalised probs
    const kept = [4, 1, 0, 2];
    const pk = softmax(kept.map((i) => scaled[i]));
    const topP = pk[0] + pk[1] + 0.1; // crosses at token 0 (third)
    const freq = frequencies(make({ temperature: T, topK: 4, topP, seed: 103 }), logits, N);
    const z = pk[0] + pk[1] + pk[2];
    const expected = [pk[2] / z, pk[1] / z, 0, 0, pk[0] / z, 0];
    expect(maxAbsDiff(freq, expected)).toBeLessThan(tol);
  });

  test("top_p alone over a 32k vocabulary only draws from the nucleus", () => {
    const rng = new Rng(104);
    const row = randomLogits(rng, 32000);
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    const p = softmax(Array.from(row));
    const nucleus = new Set<number>();
    let before = 0;
    for (const i of order) {
      if (before >= 0.9) break; // HF: kept while the mass above it is < top_p
      nucleus.add(i);
      before += p[i];
    }
    const s = make({ topP: 0.9, seed: 105 });
    const buf = new Float32Array(row.length);
    for (let k = 0; k < 300; k++) {
      buf.set(row);
      expect(nucleus.has(s.sample(buf, null))).toBe(true);
    }
  });
});

describe("TokenSampler.sampleAmong (a constraint's few allowed tokens, without a pass over the row)", () => {
  const N = 20000;
  const tol = 0.015;
  const vocab = 1024; // the dense reference with top_k 50 keeps every -Infinity tie: slow on large rows
  const rng = new Rng(5);
  const row = randomLogits(rng, vocab);
  const ids = Int32Array.from([3, 17, 18, 400, 401, 777, 1023]);
  const masked = Array.from(row, (x, i) => (ids.includes(i) ? x : -Infinity));

  for (const cfg of [{ temperature: 0.8 }, { topK: 3 }, { topK: 50 }, { topP: 0.6 }, { temperature: 1.5, topK: 4, topP: 0.9 }] as Partial<SamplerConfig>[]) {
    test(`draws the masked row's distribution: ${JSON.stringify(cfg)}`, () => {
      const sparse = make({ ...cfg, seed: 21 }), dense = make({ ...cfg, seed: 22 });
      const a = new Array(vocab).fill(0), b = new Array(vocab).fill(0);
      const scratch = new Float32Array(vocab);
      for (let i = 0; i < N; i++) {
        scratch.set(row);
        a[sparse.sampleAmong(scratch, ids, ids.length, null)]++;
        scratch.set(masked);
        b[dense.sample(scratch, null)]++;
      }
      for (let t = 0; t < vocab; t++) if (!ids.includes(t)) expect(a[t]).toBe(0);
      expect(maxAbsDiff([...ids].map((t) => a[t] / N), [...ids].map((t) => b[t] / N))).toBeLessThan(2 * tol);
    }, 30_000);
  }

  test("greedy, with a repetition penalty on the full row: the masked row's argmax", () => {
    const s = make({ doSample: false, repetitionPenalty: 1.3 });
    const seen = new TokenHistory([ids[0]!, ids[3]!, 9]);
    const full = Float32Array.from(masked);
    const expected = s.sample(full, seen);
    expect(s.sampleAmong(Float32Array.from(row), ids, ids.length, seen)).toBe(expected);
    expect(argmax(full)).toBe(expected);
  });
});
