import { describe, expect, test } from "bun:test";
import { BeamSearch, type BeamSearchResult } from "../src/sampling/beam-search.ts";
import { Rng } from "../src/sampling/rng.ts";
import { candidateCount, logSoftmaxF32, referenceBeamLoop, type BeamOpts, type LogitsFn, type RefCandidate } from "./helpers/beam-reference.ts";

type Model = LogitsFn;
interface Opts extends Omit<BeamOpts, "repetitionPenalty"> {
  temperature: number;
  topK: number;
  topP: number;
  legacy: boolean;
  seed: number;
}

const fr = Math.fround;

/** HF warpers written literally: temperature, TopK (kth value), TopP (ascending cumsum). */
function warp(row: number[], o: Opts): number[] {
  let s = row.map((x) => fr(x / fr(o.temperature)));
  if (o.topK > 0 && o.topK < s.length) {
    const kth = [...s].sort((a, b) => b - a)[o.topK - 1];
    s = s.map((x) => (x < kth ? -Infinity : x));
  }
  if (o.topP < 1) {
    const asc = s.map((_, i) => i).sort((a, b) => s[a] - s[b] || b - a);
    const max = Math.max(...s);
    const e = asc.map((i) => Math.exp(s[i] - max));
    const z = e.reduce((a, b) => a + b, 0);
    let cum = 0;
    const out = s.slice();
    asc.forEach((i, pos) => {
      cum += e[pos] / z;
      if (cum <= 1 - o.topP && pos !== asc.length - 1) out[i] = -Infinity;
    });
    s = out;
  }
  return s;
}

/** HF beam sampling (4.36+ order; `legacy` = warpers after adding beam scores), plain. */
function referenceBeamSample(model: Model, o: Opts): BeamSearchResult {
  const rng = new Rng(o.seed);
  const m = candidateCount(o);
  return referenceBeamLoop(o, (beams) => {
    const flat: RefCandidate[] = [];
    for (const [b, beam] of beams.entries()) {
      let s = logSoftmaxF32(model([...o.prompt, ...beam.tokens]));
      if (!o.legacy) s = warp(s, o);
      s = s.map((x) => fr(x + beam.score));
      if (o.legacy) s = warp(s, o);
      s.forEach((score, token) => flat.push({ score, beam: b, token }));
    }
    const gmax = Math.max(...flat.map((c) => c.score));
    const probs = flat.map((c) => Math.exp(c.score - gmax));
    const drawn: number[] = [];
    for (let d = 0; d < m; d++) {
      const total = probs.reduce((a, b) => a + b, 0);
      let pick = -1;
      if (total > 0) {
        const target = rng.next() * total;
        let acc = 0;
        for (let i = 0; i < probs.length && pick < 0; i++) {
          if (probs[i] <= 0) continue;
          acc += probs[i];
          if (target < acc) pick = i;
        }
      } else {
        for (let i = 0; i < flat.length; i++) {
          if (!drawn.includes(i) && (pick < 0 || flat[i].score > flat[pick].score)) pick = i;
        }
      }
      drawn.push(pick);
      probs[pick] = 0;
    }
    return drawn.map((i) => flat[i]).sort((a, b) => b.score - a.score);
  });
}

function runBeamSample(model: Model, o: Opts): BeamSearchResult {
  const bs = new BeamSearch({
    numBeams: o.numBeams,
    lengthPenalty: o.lengthPenalty,
    eosTokens: o.eos,
    maxNewTokens: o.maxNewTokens,
    doSample: true,
    temperature: o.temperature,
    topK: o.topK,
    topP: o.topP,
    repetitionPenalty: 1,
    rng: new Rng(o.seed),
    promptTokens: o.prompt,
    legacyWarperOrder: o.legacy,
  });
  let histories = [o.prompt.slice()];
  while (!bs.done) {
    const res = bs.step(histories.map((h) => Float32Array.from(model(h))));
    histories = res.beams.map(({ parent, token }) => [...histories[parent], token]);
  }
  return bs.finalize();
}

function hashModel(seed: number, vocab: number, eos: number, ramp: number): Model {
  return (history) => {
    let h = (2166136261 ^ seed) >>> 0;
    for (const x of history) h = Math.imul(h ^ (x + 1), 16777619) >>> 0;
    const r = new Rng(h);
    const logits = Array.from({ length: vocab }, () => r.next() * 4 - 2);
    logits[eos] += ramp * history.length - 2;
    return Array.from(Float32Array.from(logits));
  };
}

describe("beam sampling vs plain HF reference (same RNG stream)", () => {
  const grid = [
    { temperature: 0.7, topK: 0, topP: 1 },
    { temperature: 1.3, topK: 6, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.9 },
    { temperature: 0.8, topK: 6, topP: 0.8 },
  ];
  for (const numBeams of [2, 3]) {
    for (const legacy of [false, true]) {
      test(`numBeams=${numBeams} legacyWarperOrder=${legacy}`, () => {
        const outputs = new Set<string>();
        for (const w of grid) {
          for (let seed = 0; seed < 10; seed++) {
            const o: Opts = {
              prompt: [1],
              numBeams,
              lengthPenalty: [0.5, 1, 2][seed % 3],
              eos: [7],
              maxNewTokens: 6,
              legacy,
              seed: seed + 1000,
              ...w,
            };
            const model = hashModel(seed, 8, 7, 0.5);
            const got = runBeamSample(model, o);
            expect(got).toEqual(referenceBeamSample(model, o));
            outputs.add(got.tokens.join());
          }
        }
        expect(outputs.size).toBeGreaterThan(5);
      });
    }
  }

  test("same seed reproduces, different seeds vary", () => {
    const model = hashModel(3, 8, 7, 0.3);
    const o: Opts = {
      prompt: [2], numBeams: 2, lengthPenalty: 1, eos: [7], maxNewTokens: 6,
      temperature: 1.5, topK: 0, topP: 1, legacy: false, seed: 5,
    };
    expect(runBeamSample(model, o)).toEqual(runBeamSample(model, o));
    const seen = new Set<string>();
    for (let seed = 0; seed < 20; seed++) seen.add(runBeamSample(model, { ...o, seed }).tokens.join());
    expect(seen.size).toBeGreaterThan(1);
  });
});
