/**
 * Candidate selection over `numBeams` score rows (already log-softmaxed,
 * processed and offset by each beam's running score), as HF does on the
 * flattened (num_beams * vocab) view:
 *
 * - `pickTop`: torch.topk(scores, m, sorted=True). Done as a per-row partial
 *   selection of m (heap) followed by a selection of m among the numBeams*m
 *   survivors - exact, because any global top-m element is in its row's top m.
 *   Ties: lower flat index (beam * vocab + token) first.
 * - `pickSampled`: torch.multinomial(softmax(scores), m, replacement=False)
 *   then a descending sort by score. Implemented as m successive draws without
 *   replacement (the distribution torch's exponential-race implementation
 *   realises), using per-block mass sums so each draw costs
 *   O(numBeams * vocab / BLOCK + BLOCK). Sort ties keep draw order. When the
 *   remaining probability mass is 0 (torch would raise "not enough non-zero
 *   categories"), the best remaining entries by score are taken instead.
 *
 * Results: `score[r]`, `beam[r]`, `token[r]` for r < the returned count, sorted descending.
 * All scratch is allocated once per vocabulary size.
 */
import { RandomSource } from "./rng.ts";
import { topKIndices } from "./logits.ts";

const BLOCK = 1024;

export class BeamCandidatePicker {
  readonly numBeams: number;
  readonly m: number;
  readonly score: Float64Array;
  readonly beam: Int32Array;
  readonly token: Int32Array;
  private rowTop: Int32Array;
  private mergedScore: Float64Array;
  private mergedFlat: Int32Array;
  private order: Int32Array;
  private drawn: Int32Array;
  private probs: Float64Array = new Float64Array(0);
  private blockSums: Float64Array = new Float64Array(0);

  constructor(numBeams: number, m: number) {
    this.numBeams = numBeams;
    this.m = m;
    this.score = new Float64Array(m);
    this.beam = new Int32Array(m);
    this.token = new Int32Array(m);
    this.rowTop = new Int32Array(m);
    this.mergedScore = new Float64Array(numBeams * m);
    this.mergedFlat = new Int32Array(numBeams * m);
    this.order = new Int32Array(m);
    this.drawn = new Int32Array(m);
  }

  /** Deterministic top-m over all rows (greedy beam search). */
  pickTop(rows: Float32Array[], vocab: number): number {
    let merged = 0;
    for (let b = 0; b < this.numBeams; b++) {
      const row = rows[b];
      const k = topKIndices(row, this.m, this.rowTop, vocab);
      const base = b * vocab;
      for (let j = 0; j < k; j++) {
        const t = this.rowTop[j];
        this.mergedScore[merged] = row[t];
        this.mergedFlat[merged] = base + t;
        merged++;
      }
    }
    // Merged entries are in (beam, row rank) order, so among equal scores a lower
    // merged position is a lower flat index: topKIndices' tie rule matches.
    const count = topKIndices(this.mergedScore, this.m, this.order, merged);
    for (let r = 0; r < count; r++) {
      const c = this.order[r];
      const flat = this.mergedFlat[c];
      this.score[r] = this.mergedScore[c];
      this.beam[r] = Math.floor(flat / vocab);
      this.token[r] = flat - this.beam[r] * vocab;
    }
    return count;
  }

  /** Multinomial draw of m entries without replacement (beam sampling). */
  pickSampled(rows: Float32Array[], vocab: number, rng: RandomSource): number {
    const total = this.numBeams * vocab;
    const m = Math.min(this.m, total);
    this.ensureSampling(total);
    let gmax = -Infinity;
    for (let b = 0; b < this.numBeams; b++) {
      const row = rows[b];
      for (let i = 0; i < vocab; i++) if (row[i] > gmax) gmax = row[i];
    }
    if (gmax === -Infinity || gmax === Infinity) return this.pickTop(rows, vocab);
    const probs = this.probs;
    for (let b = 0; b < this.numBeams; b++) {
      const row = rows[b];
      const base = b * vocab;
      for (let i = 0; i < vocab; i++) {
        const v = row[i];
        if (v === -Infinity) {
          probs[base + i] = 0;
        } else {
          probs[base + i] = Math.exp(v - gmax);
        }
      }
    }
    const nBlocks = Math.ceil(total / BLOCK);
    for (let k = 0; k < nBlocks; k++) this.blockSums[k] = blockSum(probs, k, total);
    for (let d = 0; d < m; d++) {
      let mass = 0;
      for (let k = 0; k < nBlocks; k++) mass += this.blockSums[k];
      const flat = mass > 0 ? this.drawOne(mass, nBlocks, total, rng) : this.bestUndrawn(rows, vocab, d);
      this.drawn[d] = flat;
      probs[flat] = 0;
      const blk = Math.floor(flat / BLOCK);
      this.blockSums[blk] = blockSum(probs, blk, total);
    }
    // Sort the drawn entries by score, descending; stable (insertion sort, m is small).
    for (let d = 0; d < m; d++) {
      const flat = this.drawn[d];
      const b = Math.floor(flat / vocab);
      const s = rows[b][flat - b * vocab];
      let pos = d;
      while (pos > 0 && this.score[pos - 1] < s) {
        this.score[pos] = this.score[pos - 1];
        this.beam[pos] = this.beam[pos - 1];
        this.token[pos] = this.token[pos - 1];
        pos--;
      }
      this.score[pos] = s;
      this.beam[pos] = b;
      this.token[pos] = flat - b * vocab;
    }
    return m;
  }

  private drawOne(mass: number, nBlocks: number, total: number, rng: RandomSource): number {
    const target = rng.next() * mass;
    let acc = 0;
    let blk = -1;
    let found = false;
    for (let k = 0; k < nBlocks; k++) {
      const s = this.blockSums[k];
      if (s <= 0) continue;
      blk = k;
      if (target < acc + s) {
        found = true;
        break;
      }
      acc += s;
    }
    if (!found) acc -= this.blockSums[blk]; // rounding: settle in the last non-empty block
    const probs = this.probs;
    const start = blk * BLOCK;
    const end = Math.min(total, start + BLOCK);
    let last = -1;
    for (let i = start; i < end; i++) {
      const p = probs[i];
      if (p <= 0) continue;
      acc += p;
      last = i;
      if (target < acc) return i;
    }
    return last; // rounding at the very end of the block
  }

  /** Highest-scoring entry not drawn yet (ties: lower flat index). O(numBeams * vocab). */
  private bestUndrawn(rows: Float32Array[], vocab: number, drawnSoFar: number): number {
    let best = -1;
    let bestScore = -Infinity;
    for (let b = 0; b < this.numBeams; b++) {
      const row = rows[b];
      for (let i = 0; i < vocab; i++) {
        const flat = b * vocab + i;
        if ((best < 0 || row[i] > bestScore) && !this.isDrawn(flat, drawnSoFar)) {
          best = flat;
          bestScore = row[i];
        }
      }
    }
    return best;
  }

  private isDrawn(flat: number, upTo: number): boolean {
    for (let d = 0; d < upTo; d++) if (this.drawn[d] === flat) return true;
    return false;
  }

  private ensureSampling(total: number): void {
    if (this.probs.length < total) {
      this.probs = new Float64Array(total);
      this.blockSums = new Float64Array(Math.ceil(total / BLOCK));
    }
  }
}

function blockSum(probs: Float64Array, blk: number, total: number): number {
  const start = blk * BLOCK;
  const end = Math.min(total, start + BLOCK);
  let s = 0;
  for (let i = start; i < end; i++) s += probs[i];
  return s;
}
