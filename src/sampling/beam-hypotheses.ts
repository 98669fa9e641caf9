/**
 * Finished-hypothesis store of HF transformers' `BeamHypotheses` (4.36 - 4.49),
 * batch size 1:
 *
 *   add(hyp, sum_logprobs, generated_len):
 *     score = sum_logprobs / generated_len ** length_penalty
 *     if len < num_beams or score > worst_score:
 *       append; if len > num_beams: delete the lowest (score, insertion index)
 *       and worst_score = the second-lowest score; else worst_score = min(score, worst_score)
 *
 *   is_done(best_sum_logprobs, cur_len) with early_stopping=False:
 *     len >= num_beams and worst_score >= best_sum_logprobs / (cur_len - prompt_len) ** length_penalty
 *
 * `worst_score` starts at 1e9 as in HF. Scores are float64 like Python floats.
 */
export interface Hypothesis {
  /** Generated tokens (EOS excluded). */
  tokens: number[];
  /** Length-normalised score used for ranking. */
  score: number;
  /** True when the hypothesis ended because an EOS token was chosen. */
  finishedByEos: boolean;
}

export class BeamHypotheses {
  readonly numBeams: number;
  readonly lengthPenalty: number;
  hyps: Hypothesis[] = [];
  worstScore = 1e9;

  constructor(numBeams: number, lengthPenalty: number) {
    this.numBeams = numBeams;
    this.lengthPenalty = lengthPenalty;
  }

  /** HF `BeamHypotheses.add` with `generated_len`. */
  add(tokens: number[], sumLogprobs: number, generatedLen: number, finishedByEos: boolean): void {
    const score = sumLogprobs / Math.pow(generatedLen, this.lengthPenalty);
    if (this.hyps.length < this.numBeams || score > this.worstScore) {
      this.hyps.push({ tokens, score, finishedByEos });
      if (this.hyps.length > this.numBeams) {
        // Python: sorted([(s, idx) ...]); delete [0]; worst = [1].s
        let lo = 0;
        for (let i = 1; i < this.hyps.length; i++) {
          if (this.hyps[i].score < this.hyps[lo].score) lo = i;
        }
        let second = -1;
        for (let i = 0; i < this.hyps.length; i++) {
          if (i === lo) continue;
          if (second < 0 || this.hyps[i].score < this.hyps[second].score) second = i;
        }
        this.worstScore = this.hyps[second].score;
        this.hyps.splice(lo, 1);
      } else {
        this.worstScore = Math.min(score, this.worstScore);
      }
    }
  }

  /** HF `is_done` for early_stopping=False; `generatedLen` = cur_len - prompt_len. */
  isDone(bestSumLogprobs: number, generatedLen: number): boolean {
    if (this.hyps.length < this.numBeams) return false;
    const highestAttainable = bestSumLogprobs / Math.pow(generatedLen, this.lengthPenalty);
    return this.worstScore >= highestAttainable;
  }

  /**
   * HF finalize's pick: `sorted(beams, key=score).pop()`, i.e. the highest score,
   * and among equal scores the one inserted last (Python's sort is stable).
   */
  best(): Hypothesis | null {
    let best: Hypothesis | null = null;
    for (const h of this.hyps) if (best === null || h.score >= best.score) best = h;
    return best;
  }

  clone(): BeamHypotheses {
    const c = new BeamHypotheses(this.numBeams, this.lengthPenalty);
    c.hyps = this.hyps.slice();
    c.worstScore = this.worstScore;
    return c;
  }
}

/** Length of the longest common prefix of all sequences (0 for none). */
export function commonPrefixLength(seqs: readonly (readonly number[])[]): number {
  if (seqs.length === 0) return 0;
  let len = seqs[0].length;
  for (const s of seqs) if (s.length < len) len = s.length;
  const ref = seqs[0];
  for (let i = 0; i < len; i++) {
    for (let j = 1; j < seqs.length; j++) if (seqs[j][i] !== ref[i]) return i;
  }
  return len;
}
