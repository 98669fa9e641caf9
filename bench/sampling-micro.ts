/**
 * Micro-benchmark of the TypeScript sampling hot path (no native code).
 * Usage: bun run bench/sampling-micro.ts [vocab=32000]
 * Prints microseconds per call. TokenSampler.sample works in place, so each
 * call first copies a fresh row; the copy cost is printed separately.
 */
import { argmax } from "../src/sampling/logits.ts";
import { Rng } from "../src/sampling/rng.ts";
import { TokenSampler } from "../src/sampling/sampler.ts";
import { TokenHistory } from "../src/sampling/token-history.ts";
import { BeamSearch } from "../src/sampling/beam-search.ts";
import { median } from "./stats.ts";

const vocab = Number(process.argv[2] ?? 32000);
const rng = new Rng(2024);

function gaussian(): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** LLM-like row: Gaussian background plus a handful of strong candidates. */
function peakedRow(): Float32Array {
  const row = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) row[i] = gaussian() * 2;
  for (let j = 0; j < 8; j++) row[Math.floor(rng.next() * vocab)] = 12 + gaussian() * 1.5;
  return row;
}

/** Worst case for top-p: a flat row whose nucleus covers most of the vocabulary. */
function flatRow(): Float32Array {
  const row = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) row[i] = rng.next() * 2;
  return row;
}

/** Best of 5 rounds (the machine may be shared), after a warm-up round. */
function bench(name: string, iterations: number, fn: (i: number) => void): number {
  const warm = Math.max(10, Math.floor(iterations / 5));
  for (let i = 0; i < warm; i++) fn(i);
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < iterations; i++) fn(i);
    rounds.push((Bun.nanoseconds() - t0) / 1000 / iterations);
  }
  const best = Math.min(...rounds);
  const line = `${best.toFixed(2).padStart(9)} µs/call  (median ${median(rounds).toFixed(2)})`;
  console.log(`${name.padEnd(64)} ${line}`);
  return best;
}

const rows = Array.from({ length: 16 }, peakedRow);
const flats = Array.from({ length: 4 }, flatRow);
const work = new Float32Array(vocab);
const history = new TokenHistory(Array.from({ length: 300 }, (_, i) => (i * 7919) % vocab), vocab);
let sink = 0;

console.log(`vocab = ${vocab}, bun ${Bun.version}`);
bench(`argmax (vocab ${vocab})`, 2000, (i) => {
  sink += argmax(rows[i & 15]);
});
const copy = bench("row copy (Float32Array.set, included below)", 2000, (i) => {
  work.set(rows[i & 15]);
});

/** One sampler on copies of `src` rows (the copy's cost is the row above). */
function samplerBench(label: string, sampler: TokenSampler, src: Float32Array[], iterations = 2000, seen: TokenHistory | null = null): void {
  bench(label, iterations, (i) => {
    work.set(src[i % src.length]!);
    sink += sampler.sample(work, seen);
  });
}

const makeSampler = (doSample: boolean, temperature: number, topK: number, topP: number, repetitionPenalty: number, seed: number) =>
  new TokenSampler({ doSample, temperature, topK, topP, repetitionPenalty, seed });
samplerBench("sample temp 0.8, top_k 40, top_p 0.95", makeSampler(true, 0.8, 40, 0.95, 1, 1), rows);
samplerBench("sample temp 0.8, top_k 40, top_p 0.95, rep. penalty 1.1 (300 seen)", makeSampler(true, 0.8, 40, 0.95, 1.1, 1), rows, 2000, history);
const topP = makeSampler(true, 1, 0, 0.9, 1, 2);
samplerBench("sample top_k 0, top_p 0.9 (peaked row)", topP, rows);
samplerBench("sample top_k 0, top_p 0.9 (flat row: nucleus ~ 85% of vocab)", topP, flats, 500);
samplerBench("sample full softmax (top_k 0, top_p 1)", makeSampler(true, 1, 0, 1, 1, 3), rows);
samplerBench("greedy (doSample false)", makeSampler(false, 1, 0, 1, 1, 4), rows);

function beamBench(label: string, doSample: boolean, penalty: number): void {
  const numBeams = 4;
  const make = () =>
    new BeamSearch({
      numBeams, lengthPenalty: 1, eosTokens: [vocab - 1], maxNewTokens: 1 << 30, doSample,
      temperature: 0.8, topK: doSample ? 50 : 0, topP: doSample ? 0.95 : 1, repetitionPenalty: penalty,
      rng: new Rng(5), promptTokens: Array.from({ length: 64 }, (_, i) => i * 13),
    });
  let bs = make();
  let steps = 0;
  const us = bench(`BeamSearch.step numBeams 4 ${label} (whole step)`, 400, (i) => {
    if (steps++ % 200 === 0) {
      bs = make();
      bs.step([rows[i & 15]]);
    }
    const live = [rows[i & 15], rows[(i + 1) & 15], rows[(i + 2) & 15], rows[(i + 3) & 15]];
    const r = bs.step(live.slice(0, bs.liveCount));
    sink += r.beams[0].token;
  });
  console.log(`${"  -> per beam (best)".padEnd(64)} ${(us / numBeams).toFixed(2).padStart(9)} µs/beam`);
}
beamBench("greedy", false, 1);
beamBench("greedy, rep. penalty 1.2", false, 1.2);
beamBench("sampling (T 0.8, top_k 50, top_p 0.95)", true, 1);

console.log(`(copy cost ${copy.toFixed(2)} µs is included in the sampler lines; sink ${sink % 7})`);
