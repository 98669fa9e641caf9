import { describe, expect, test } from "bun:test";
import { BeamSearch, type BeamSearchResult } from "../src/sampling/beam-search.ts";
import { Rng } from "../src/sampling/rng.ts";
import { referenceBeamSearch, type BeamOpts, type LogitsFn } from "./helpers/beam-reference.ts";

type Model = LogitsFn;
type Opts = BeamOpts;

/** Drive BeamSearch like the engine would, checking the settled prefix along the way. */
function runBeamSearch(model: Model, o: Opts): { result: BeamSearchResult; settled: number[][]; trace: unknown[] } {
  const bs = new BeamSearch({
    numBeams: o.numBeams,
    lengthPenalty: o.lengthPenalty,
    eosTokens: o.eos,
    maxNewTokens: o.maxNewTokens,
    doSample: false,
    temperature: 1,
    topK: 0,
    topP: 1,
    repetitionPenalty: o.repetitionPenalty,
    promptTokens: o.prompt,
  });
  let histories = [o.prompt.slice()];
  const settled: number[][] = [];
  const trace: unknown[] = [];
  while (!bs.done) {
    const res = bs.step(histories.map((h) => Float32Array.from(model(h))));
    histories = res.beams.map(({ parent, token }) => [...histories[parent], token]);
    histories.forEach((h, i) => expect(h).toEqual([...o.prompt, ...bs.liveTokens(i)]));
    trace.push({
      beams: histories.map((_, i) => [bs.liveTokens(i), bs.liveScore(i)]),
      hyps: bs.hypotheses().map((h) => [h.tokens, h.score, h.finishedByEos]),
    });
    const prefix = bs.settledTokens();
    expect(prefix.length).toBe(bs.commonPrefixLength());
    if (settled.length > 0) expect(prefix.slice(0, settled[settled.length - 1].length)).toEqual(settled[settled.length - 1]);
    settled.push(prefix);
  }
  return { result: bs.finalize(), settled, trace };
}

function hash(xs: number[], seed: number): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (const x of xs) h = Math.imul(h ^ (x + 1), 16777619) >>> 0;
  return h;
}

/** Pseudo-random logits per history; EOS grows likely with length (`eosRamp` per token). */
function hashModel(seed: number, vocab: number, eos: number[], eosRamp: number, spread = 4): Model {
  return (history) => {
    const r = new Rng(hash(history, seed));
    const logits = Array.from({ length: vocab }, () => r.next() * spread - spread / 2);
    for (const e of eos) logits[e] += eosRamp * history.length - 2;
    return Array.from(Float32Array.from(logits));
  };
}

describe("BeamSearch vs plain HF reference", () => {
  const configs: { vocab: number; eos: number[]; ramp: number; pen: number }[] = [
    { vocab: 5, eos: [4], ramp: 0.6, pen: 1 },
    { vocab: 5, eos: [3, 4], ramp: 0.4, pen: 1 },
    { vocab: 7, eos: [0], ramp: 0.3, pen: 1.3 },
    { vocab: 6, eos: [5], ramp: 1.2, pen: 1 },
    { vocab: 6, eos: [2], ramp: -0.3, pen: 1.2 }, // EOS unlikely: mostly ends at maxNewTokens
  ];
  for (const numBeams of [2, 3, 4]) {
    for (const lengthPenalty of [0.5, 1, 2]) {
      test(`numBeams=${numBeams} lengthPenalty=${lengthPenalty}`, () => {
        let byEos = 0;
        let total = 0;
        for (const c of configs) {
          for (let seed = 0; seed < 12; seed++) {
            const model = hashModel(seed * 31 + c.vocab, c.vocab, c.eos, c.ramp);
            const o: Opts = {
              prompt: [1, 2],
              numBeams,
              lengthPenalty,
              eos: c.eos,
              maxNewTokens: 8,
              repetitionPenalty: c.pen,
            };
            const expectedTrace: unknown[] = [];
            const expected = referenceBeamSearch(model, o, expectedTrace);
            const { result, settled, trace } = runBeamSearch(model, o);
            expect(trace).toEqual(expectedTrace);
            expect(result).toEqual(expected);
            for (const prefix of settled) expect(result.tokens.slice(0, prefix.length)).toEqual(prefix);
            if (result.finishedByEos) byEos++;
            total++;
          }
        }
        expect(byEos).toBeGreaterThan(0); // finished hypotheses win sometimes...
        expect(byEos).toBeLessThan(total); // ...and live beams at maxNewTokens other times
      });
    }
  }

  test("length penalty changes the winner across the random models", () => {
    let differing = 0;
    for (let seed = 0; seed < 40; seed++) {
      const model = hashModel(seed, 6, [5], 0.5);
      const base: Opts = { prompt: [0], numBeams: 3, lengthPenalty: 0, eos: [5], maxNewTokens: 10, repetitionPenalty: 1 };
      const a = runBeamSearch(model, base).result.tokens;
      const b = runBeamSearch(model, { ...base, lengthPenalty: 2 }).result.tokens;
      if (a.join() !== b.join()) differing++;
    }
    expect(differing).toBeGreaterThan(0);
  });
});

describe("BeamSearch constructed cases", () => {
  // vocab: 0, 1, 2 and EOS = 3. Early EOS: p = 0.6 (one token). Long path [1, 2, EOS]: 0.35 * 0.9 * 0.95.
  const table: Record<string, number[]> = {
    "": [0.01, 0.35, 0.04, 0.6],
    "1": [0.025, 0.025, 0.9, 0.05],
    "1,2": [0.02, 0.02, 0.01, 0.95],
  };
  const model: Model = (h) => (table[h.slice(1).join()] ?? [0.3, 0.3, 0.3, 0.1]).map((p) => Math.log(p));
  const o: Opts = { prompt: [0], numBeams: 2, lengthPenalty: 1, eos: [3], maxNewTokens: 6, repetitionPenalty: 1 };

  test("short EOS answer wins without length normalisation, long one with it", () => {
    const shortWin = runBeamSearch(model, { ...o, lengthPenalty: 0 }).result;
    expect(shortWin.tokens).toEqual([]);
    expect(shortWin.finishedByEos).toBe(true);
    expect(shortWin.score).toBeCloseTo(Math.log(0.6), 6);
    for (const lengthPenalty of [1, 2]) {
      const longWin = runBeamSearch(model, { ...o, lengthPenalty }).result;
      expect(longWin.tokens).toEqual([1, 2]);
      expect(longWin.finishedByEos).toBe(true);
      expect(longWin.score).toBeCloseTo(Math.log(0.35 * 0.9 * 0.95) / 3 ** lengthPenalty, 5);
      expect(longWin).toEqual(referenceBeamSearch(model, { ...o, lengthPenalty }));
    }
    expect(runBeamSearch(model, { ...o, lengthPenalty: 0 }).result).toEqual(
      referenceBeamSearch(model, { ...o, lengthPenalty: 0 }),
    );
  });

  test("first step reports a single parent and maxNewTokens stops the search", () => {
    const bs = new BeamSearch({
      numBeams: 3, lengthPenalty: 1, eosTokens: new Set([3]), maxNewTokens: 2, doSample: false,
      temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, promptTokens: [0],
    });
    expect(bs.liveCount).toBe(1);
    const r1 = bs.step([Float32Array.from([0.1, 0.2, 0.3, -5])]);
    expect(r1.beams.map((b) => b.parent)).toEqual([0, 0, 0]);
    expect(r1.beams.map((b) => b.token)).toEqual([2, 1, 0]);
    expect(r1.done).toBe(false);
    const row = Float32Array.from([0, 0, 0, -5]);
    const r2 = bs.step([row, row, row]);
    expect(r2.done).toBe(true);
    expect(() => bs.step([row, row, row])).toThrow();
    const fin = bs.finalize();
    expect(fin.tokens.length).toBe(2);
    expect(fin.finishedByEos).toBe(false);
    expect(bs.finalize()).toEqual(fin); // finalize does not mutate
  });

  test("first step with two EOS tokens takes a -1e9 beam like HF", () => {
    const bs = new BeamSearch({
      numBeams: 4, lengthPenalty: 1, eosTokens: [3, 4], maxNewTokens: 3, doSample: false,
      temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, promptTokens: [0],
    });
    const r = bs.step([Float32Array.from([0.5, 2, 1, 3, -1])]);
    // beam 0 offers only 3 non-EOS tokens; the 4th comes from a copy scored -1e9 (ties -> token 0)
    expect(r.beams).toEqual([
      { parent: 0, token: 1 },
      { parent: 0, token: 2 },
      { parent: 0, token: 0 },
      { parent: 0, token: 0 },
    ]);
    expect(bs.liveScore(3)).toBe(-1e9);
    expect(bs.hypotheses().map((h) => h.tokens)).toEqual([[]]); // EOS 3 at rank 0; EOS 4 at rank 4 skipped
  });

  test("does not modify the caller's logits", () => {
    const bs = new BeamSearch({
      numBeams: 2, lengthPenalty: 1, eosTokens: [3], maxNewTokens: 3, doSample: false,
      temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1.5, promptTokens: [0, 1],
    });
    const row = Float32Array.from([1, 2, 3, 4]);
    bs.step([row]);
    expect(Array.from(row)).toEqual([1, 2, 3, 4]);
  });
});
