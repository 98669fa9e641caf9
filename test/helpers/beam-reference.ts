// HF transformers beam search written plainly (no KV sharing, no batching, no partial selection),
// the reference the engine's beam search is checked against.
import type { BeamSearchResult } from "../../src/sampling/beam-search.ts";

export type LogitsFn = (history: number[]) => number[];
export interface BeamOpts {
  prompt: number[];
  numBeams: number;
  lengthPenalty: number;
  eos: number[];
  maxNewTokens: number;
  repetitionPenalty: number;
}

const fr = Math.fround;

/** log_softmax in float32 (torch: x - max - log(sum(exp(x - max)))). */
export function logSoftmaxF32(xs: number[]): number[] {
  const max = Math.max(...xs);
  const lse = Math.log(xs.reduce((s, x) => s + Math.exp(x - max), 0));
  return xs.map((x) => fr(x - max - lse));
}

/** HF BeamHypotheses written plainly: keeps the best n finished hypotheses, Python-style. */
export class ReferenceHypotheses {
  hyps: { score: number; tokens: number[]; eos: boolean }[] = [];
  worst = 1e9;
  constructor(readonly n: number, readonly lengthPenalty: number) {}

  add(tokens: number[], sum: number, genLen: number, eos: boolean): void {
    const score = sum / genLen ** this.lengthPenalty;
    if (this.hyps.length < this.n || score > this.worst) {
      this.hyps.push({ score, tokens: [...tokens], eos });
      if (this.hyps.length > this.n) {
        const sorted = this.hyps.map((h, idx) => [h.score, idx]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
        this.hyps = this.hyps.filter((_, idx) => idx !== sorted[0]![1]);
        this.worst = sorted[1]![0]!;
      } else {
        this.worst = Math.min(score, this.worst);
      }
    }
  }

  /** HF is_done with early_stopping=False */
  isDone(bestCandidate: number, step: number): boolean {
    return this.hyps.length >= this.n && this.worst >= bestCandidate / step ** this.lengthPenalty;
  }

  /** highest score; the later-added wins ties (Python's stable sort) */
  best(): BeamSearchResult {
    const best = this.hyps.map((h, i) => ({ h, i })).sort((a, b) => a.h.score - b.h.score || a.i - b.i).pop()!.h;
    return { tokens: best.tokens, score: best.score, finishedByEos: best.eos };
  }
}

export interface RefBeam {
  tokens: number[];
  score: number;
}

/** HF BeamSearchScorer.process, plainly: candidates in rank order become the next beams or hypotheses. */
export function processCandidates(top: { score: number; beam: number; token: number }[], beams: RefBeam[], eos: number[], step: number, h: ReferenceHypotheses): RefBeam[] {
  const next: RefBeam[] = [];
  for (let rank = 0; rank < top.length && next.length < h.n; rank++) {
    const c = top[rank]!;
    if (eos.includes(c.token)) {
      if (rank < h.n) h.add(beams[c.beam]!.tokens, c.score, step, true);
    } else {
      next.push({ tokens: [...beams[c.beam]!.tokens, c.token], score: c.score });
    }
  }
  return next;
}

export type RefCandidate = { score: number; beam: number; token: number };

/**
 * The HF beam loop written plainly (4.36+ BeamSearchScorer, early_stopping=False): num_beams
 * full copies with initial scores [0, -1e9, ...]; `topCandidates` gives a step's candidates in
 * rank order (search: the best log-probs, sampling: the drawn ones), BeamSearchScorer.process
 * and is_done do the rest. `afterStep` sees the state after each step (traces).
 */
export function referenceBeamLoop(
  o: Pick<BeamOpts, "numBeams" | "lengthPenalty" | "eos" | "maxNewTokens">,
  topCandidates: (beams: RefBeam[]) => RefCandidate[],
  afterStep?: (beams: RefBeam[], h: ReferenceHypotheses) => void,
): BeamSearchResult {
  let beams: RefBeam[] = Array.from({ length: o.numBeams }, (_, b) => ({ tokens: [], score: b === 0 ? 0 : -1e9 }));
  const h = new ReferenceHypotheses(o.numBeams, o.lengthPenalty);
  let done = false;
  for (let step = 1; step <= o.maxNewTokens && !done; step++) {
    const top = topCandidates(beams);
    beams = processCandidates(top, beams, o.eos, step, h);
    done = h.isDone(top[0]!.score, step);
    afterStep?.(beams, h);
  }
  if (!done) for (const b of beams) h.add(b.tokens, b.score, b.tokens.length, false);
  return h.best();
}

/** Candidates a step can pick from: HF keeps max(2, 1 + #eos) * num_beams of them. */
export const candidateCount = (o: Pick<BeamOpts, "numBeams" | "eos">) => Math.max(2, 1 + o.eos.length) * o.numBeams;

/** HF beam search, plainly: every candidate of every beam sorted by score. */
export function referenceBeamSearch(model: LogitsFn, o: BeamOpts, trace: unknown[] = []): BeamSearchResult {
  const m = candidateCount(o);
  const topCandidates = (beams: RefBeam[]) => {
    const cands: (RefCandidate & { flat: number })[] = [];
    beams.forEach((beam, b) => {
      const history = [...o.prompt, ...beam.tokens];
      const logp = logSoftmaxF32(model(history));
      for (const t of new Set(history)) {
        logp[t] = logp[t] < 0 ? fr(logp[t] * fr(o.repetitionPenalty)) : fr(logp[t] / fr(o.repetitionPenalty));
      }
      // only a beam's best m tokens can be among the best m overall: skip the rest (same result, less sorting)
      const order = logp.map((lp, t) => t).sort((x, y) => logp[y]! - logp[x]! || x - y).slice(0, m);
      for (const t of order) cands.push({ score: fr(logp[t]! + beam.score), beam: b, token: t, flat: b * logp.length + t });
    });
    cands.sort((a, b) => b.score - a.score || a.flat - b.flat);
    return cands.slice(0, m);
  };
  return referenceBeamLoop(o, topCandidates, (beams, h) =>
    trace.push({ beams: beams.map((b) => [b.tokens, b.score]), hyps: h.hyps.map((x) => [x.tokens, x.score, x.eos]) }));
}
