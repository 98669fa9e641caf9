/**
 * Beam search / beam sampling state machine for ONE request (batch size 1,
 * decoder-only, early_stopping=False), reproducing Hugging Face transformers
 * 4.36 - 4.49 (`_beam_search` / `_beam_sample` + `BeamSearchScorer` with
 * `decoder_prompt_len`; 4.50 replaced that code with a vectorised rewrite meant
 * to keep the same results). Per step, for each live beam (scratch rows, the
 * caller's logits are never modified):
 *
 *   scores = log_softmax(logits)                       (float32)
 *   scores = repetition_penalty(beam history, scores)  (prompt + beam's tokens)
 *   if sampling: scores = top_p(top_k(scores / T))     (per beam row)
 *   scores = scores + beam_score                       (float32)
 *   m = max(2, 1 + #eos) * num_beams candidates over the flattened beams x vocab:
 *     greedy: top-m;  sampling: multinomial(softmax(all), m, no replacement), sorted
 *
 * `legacyWarperOrder: true` applies the sampling warpers after adding the beam
 * score instead (transformers <= 4.34 `_beam_sample`): the beam score then gets
 * divided by the temperature every step. Only the order changes; lengths are
 * still counted from the prompt end (4.36+), and m is as above (4.34 drew
 * 2 * num_beams, the same for a single EOS id).
 *
 * Engine protocol: call `step` with one row per live beam (ONE row on the
 * first step), then rebuild the live sequences from `beams` (parent + token),
 * until `done`; then `finalize()`.
 *
 * Candidates are processed as `BeamSearchScorer.process`: in rank order, an EOS
 * token with rank < num_beams becomes a finished hypothesis (the beam's tokens
 * without EOS, generated_len = tokens + 1, i.e. cur_len - prompt_len where HF's
 * cur_len = input_ids.shape[-1] + 1), an EOS at rank >= num_beams is skipped, any
 * other token extends its beam until num_beams beams are filled. Done when
 * `BeamHypotheses.is_done(max candidate score, cur_len)` holds (see
 * beam-hypotheses.ts) or after `maxNewTokens` steps.
 *
 * First step: the engine supplies ONE logits row (the prompt). HF starts with
 * num_beams identical copies whose running scores are [0, -1e9, -1e9, ...];
 * this class reproduces exactly that by reusing row 0 for the virtual copies,
 * so even the rare -1e9 candidates (tiny vocabularies, -inf logits) match HF.
 * Their `parent` is reported as 0 because all copies are the same sequence.
 */
import { RandomSource, Rng } from "./rng.ts";
import { logSoftmax, scaleByTemperature } from "./logits.ts";
import { topKFilterInPlace, topPFilterInPlace } from "./warpers.ts";
import { BeamCandidatePicker } from "./beam-candidates.ts";
import { BeamHypotheses, commonPrefixLength } from "./beam-hypotheses.ts";
import { MIN_TEMPERATURE, validateSamplingParams } from "./sampler.ts";

export interface BeamSearchConfig {
  numBeams: number;
  /** Exponent on the generated length dividing a finished hypothesis' sum of log-probs. */
  lengthPenalty: number;
  eosTokens: Set<number> | number[];
  maxNewTokens: number;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  /** Used only for beam sampling; default: crypto-seeded Rng. */
  rng?: RandomSource;
  promptTokens: ArrayLike<number>;
  /** transformers <= 4.34 beam-sample warper order (see module comment). */
  legacyWarperOrder?: boolean;
}

export interface StepResult {
  /** Next live beams; `parent` indexes the previous step's live beams (rows). */
  beams: { parent: number; token: number }[];
  done: boolean;
}

export interface BeamSearchResult {
  /** Generated tokens of the winning hypothesis, EOS not included. */
  tokens: number[];
  /** Length-normalised score of the winner. */
  score: number;
  finishedByEos: boolean;
}

const INITIAL_OTHER_BEAM_SCORE = -1e9;

export class BeamSearch {
  readonly numBeams: number;
  readonly maxNewTokens: number;
  private readonly eos: Set<number>;
  private readonly sampling: boolean;
  private readonly temperature: number;
  private readonly topK: number;
  private readonly topP: number;
  private readonly penalty: number;
  private readonly legacyOrder: boolean;
  private readonly rng: RandomSource;
  private readonly promptDistinct: number[];
  private readonly picker: BeamCandidatePicker;
  private readonly hyps: BeamHypotheses;

  private live: number[][] = [[]];
  private liveScores: number[] = [0];
  private generated = 0;
  private doneByScore = false;

  private vocab = 0;
  private rows: Float32Array[] = [];
  private warpScratch: Int32Array = new Int32Array(0);
  private expScratch: Float64Array = new Float64Array(0);
  private stamp: Int32Array = new Int32Array(0);
  private stampId = 0;

  constructor(config: BeamSearchConfig) {
    if (!Number.isInteger(config.numBeams) || config.numBeams < 1) throw new RangeError("numBeams must be >= 1");
    if (!Number.isInteger(config.maxNewTokens) || config.maxNewTokens < 0) throw new RangeError("bad maxNewTokens");
    if (!Number.isFinite(config.lengthPenalty)) throw new RangeError("lengthPenalty must be finite");
    validateSamplingParams(config);
    this.numBeams = config.numBeams;
    this.maxNewTokens = config.maxNewTokens;
    this.eos = new Set(config.eosTokens);
    this.sampling = config.doSample && config.temperature >= MIN_TEMPERATURE; // below it: deterministic beams (see sampler.ts)
    this.temperature = config.temperature;
    this.topK = config.topK;
    this.topP = config.topP;
    this.penalty = config.repetitionPenalty;
    this.legacyOrder = config.legacyWarperOrder === true;
    this.rng = config.rng ?? (this.sampling ? new Rng() : { next: () => 0 });
    this.promptDistinct = [...new Set(Array.from(config.promptTokens))];
    this.picker = new BeamCandidatePicker(this.numBeams, Math.max(2, 1 + this.eos.size) * this.numBeams);
    this.hyps = new BeamHypotheses(this.numBeams, config.lengthPenalty);
  }

  /** True once no further `step` may be called (call `finalize`). */
  get done(): boolean {
    return this.doneByScore || this.generated >= this.maxNewTokens;
  }
  /** Number of live beams = number of logits rows the next `step` expects. */
  get liveCount(): number {
    return this.live.length;
  }
  /** Steps taken so far = generated length of every live beam. */
  get stepCount(): number {
    return this.generated;
  }
  /** Generated tokens of live beam `i` (do not mutate). */
  liveTokens(i: number): readonly number[] {
    return this.live[i];
  }
  /** Running score (sum of processed log-probs) of live beam `i`. */
  liveScore(i: number): number {
    return this.liveScores[i];
  }

  step(logitsPerLiveBeam: Float32Array[]): StepResult {
    if (this.done) throw new Error("BeamSearch.step called after done");
    const nLive = this.live.length;
    if (logitsPerLiveBeam.length !== nLive) {
      throw new RangeError(`BeamSearch.step: expected ${nLive} logits rows, got ${logitsPerLiveBeam.length}`);
    }
    const vocab = logitsPerLiveBeam[0].length;
    for (const row of logitsPerLiveBeam) {
      if (row.length !== vocab) throw new RangeError("BeamSearch.step: rows differ in length");
    }
    this.ensureScratch(vocab);
    const nb = this.numBeams;
    const warpFirst = this.sampling && !this.legacyOrder;
    for (let b = 0; b < nLive; b++) {
      const row = this.rows[b];
      logSoftmax(logitsPerLiveBeam[b], row);
      this.applyPenalty(row, this.live[b]);
      if (warpFirst) this.warp(row);
    }
    const first = nLive < nb; // only on the first step: HF's identical copies
    for (let b = nLive; b < nb; b++) this.rows[b].set(this.rows[0]);
    for (let b = 0; b < nb; b++) {
      const s = first ? (b === 0 ? 0 : INITIAL_OTHER_BEAM_SCORE) : this.liveScores[b];
      const row = this.rows[b];
      if (s !== 0) for (let i = 0; i < vocab; i++) row[i] = row[i] + s;
      if (this.sampling && this.legacyOrder) this.warp(row);
    }

    const picker = this.picker;
    const count = this.sampling
      ? picker.pickSampled(this.rows, vocab, this.rng)
      : picker.pickTop(this.rows, vocab);

    const generatedLen = this.generated + 1; // HF: cur_len - decoder_prompt_len
    const nextLive: number[][] = [];
    const nextScores: number[] = [];
    const beams: { parent: number; token: number }[] = [];
    for (let r = 0; r < count && nextLive.length < nb; r++) {
      const token = picker.token[r];
      const parent = first ? 0 : picker.beam[r];
      if (this.eos.has(token)) {
        if (r >= nb) continue;
        this.hyps.add(this.live[parent].slice(), picker.score[r], generatedLen, true);
      } else {
        const tokens = this.live[parent].slice();
        tokens.push(token);
        nextLive.push(tokens);
        nextScores.push(picker.score[r]);
        beams.push({ parent, token });
      }
    }
    if (nextLive.length < nb) {
      throw new Error(`BeamSearch: only ${nextLive.length} non-EOS candidates for ${nb} beams`);
    }
    this.doneByScore = this.hyps.isDone(picker.score[0], generatedLen);
    this.generated = generatedLen;
    this.live = nextLive;
    this.liveScores = nextScores;
    return { beams, done: this.done };
  }

  /**
   * HF `BeamSearchScorer.finalize`: unless the score heuristic finished the
   * search, every live beam is added as a hypothesis (generated_len = steps
   * taken); the highest score wins (later-added wins exact ties). Does not
   * change the state, so it may be called at any time (e.g. on cancellation).
   */
  finalize(): BeamSearchResult {
    const hyps = this.doneByScore ? this.hyps : this.hyps.clone();
    if (!this.doneByScore && this.generated > 0) {
      for (let b = 0; b < this.live.length; b++) {
        hyps.add(this.live[b], this.liveScores[b], this.generated, false);
      }
    }
    const best = hyps.best();
    if (best === null) return { tokens: [], score: 0, finishedByEos: false };
    return { tokens: best.tokens.slice(), score: best.score, finishedByEos: best.finishedByEos };
  }

  /**
   * Number of leading generated tokens that every possible final answer shares:
   * the common prefix of all live beams and all kept finished hypotheses (a
   * finished hypothesis can still win). After the score heuristic finished the
   * search only the hypotheses count. Safe to stream as settled text.
   */
  commonPrefixLength(): number {
    return commonPrefixLength(this.candidateSequences());
  }

  /** The settled tokens themselves (`commonPrefixLength()` of them). */
  settledTokens(): number[] {
    const seqs = this.candidateSequences();
    return seqs.length === 0 ? [] : seqs[0].slice(0, commonPrefixLength(seqs));
  }

  private candidateSequences(): number[][] {
    const seqs: number[][] = [];
    for (const h of this.hyps.hyps) seqs.push(h.tokens);
    if (!this.doneByScore) for (const t of this.live) seqs.push(t);
    return seqs;
  }

  /** Finished hypotheses kept so far (read-only snapshot). */
  hypotheses(): { tokens: number[]; score: number; finishedByEos: boolean }[] {
    return this.hyps.hyps.map((h) => ({ tokens: h.tokens.slice(), score: h.score, finishedByEos: h.finishedByEos }));
  }

  private warp(row: Float32Array): void {
    scaleByTemperature(row, this.temperature); // beam sampling runs only at T >= MIN_TEMPERATURE: real logits stay finite
    if (this.topK > 0 && this.topK < row.length) topKFilterInPlace(row, this.topK, this.warpScratch);
    if (this.topP < 1) topPFilterInPlace(row, this.topP, this.warpScratch, this.expScratch);
  }

  /** HF repetition penalty on log-probs, each distinct prompt/beam token once. */
  private applyPenalty(row: Float32Array, generated: number[]): void {
    if (this.penalty === 1) return;
    const p = Math.fround(this.penalty);
    const n = row.length;
    if (this.stampId >= 0x7ffffffe) {
      this.stamp.fill(0);
      this.stampId = 0;
    }
    const id = ++this.stampId;
    const stamp = this.stamp;
    for (let pass = 0; pass < 2; pass++) {
      const ids = pass === 0 ? this.promptDistinct : generated;
      for (let j = 0; j < ids.length; j++) {
        const t = ids[j];
        if (t < 0 || t >= n || stamp[t] === id) continue;
        stamp[t] = id;
        const v = row[t];
        row[t] = v < 0 ? v * p : v / p;
      }
    }
  }

  private ensureScratch(vocab: number): void {
    if (this.vocab === vocab) return;
    this.vocab = vocab;
    this.rows = [];
    for (let b = 0; b < this.numBeams; b++) this.rows.push(new Float32Array(vocab));
    this.warpScratch = new Int32Array(this.sampling ? vocab : 0);
    this.expScratch = new Float64Array(this.sampling && this.topP < 1 ? vocab : 0);
    this.stamp = new Int32Array(vocab);
    this.stampId = 0;
  }
}
