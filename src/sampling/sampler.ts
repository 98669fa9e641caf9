/**
 * Per-request token sampler with Hugging Face transformers `generate()`
 * semantics (greedy search / multinomial sampling, `_sample`; these processors
 * have behaved the same throughout transformers 4.3x - 4.5x):
 *
 *   processors: RepetitionPenaltyLogitsProcessor   (greedy and sampling)
 *   warpers:    Temperature -> TopK -> TopP        (sampling only)
 *   draw:       softmax over the surviving tokens, one uniform draw
 *
 * HF adds a warper only when it is active: temperature != 1, top_k != 0,
 * top_p < 1. Greedy is used when `doSample` is false or `temperature` is 0
 * (HF itself rejects temperature 0 with sampling; OpenAI-style APIs mean greedy),
 * and below MIN_TEMPERATURE, where logits / T overflows float32 (1e-40 made
 * every positive logit +inf) while the distribution is one-hot anyway: greedy
 * is its exact limit.
 *
 * IN PLACE: `sample()` overwrites the logits row it is given (penalty and
 * temperature are applied to it). That is intended for the engine's own logits
 * row, which is not read again after sampling; pass a copy if you need the raw
 * values afterwards.
 *
 * Cost per call: O(vocab) passes plus O(vocab log k) partial selection; scratch
 * buffers are owned by the sampler and sized to the vocabulary once.
 */
import { RandomSource, Rng } from "./rng.ts";
import { applyRepetitionPenaltyDistinct, argmax, scaleByTemperature, uniqueArgmax } from "./logits.ts";
import { topKCandidates, topPCut, topPSelect } from "./warpers.ts";
import { drawFromCandidates, drawFromRow, drawWeightedCandidates } from "./draw.ts";
import { TokenHistory } from "./token-history.ts";
import { applyLogitBias, OutputCounts } from "./openai-processors.ts";

/** Below this, sampling is greedy (see the module comment): logits up to 3.4e18 stay finite when divided by it. */
export const MIN_TEMPERATURE = 1e-20;

export interface SamplerConfig {
  /** false: greedy (argmax after processors). */
  doSample: boolean;
  /** > 0 divides the logits; 0 means greedy. */
  temperature: number;
  /** 0 disables; otherwise keep max(topK, 1) tokens (plus ties at the threshold). */
  topK: number;
  /** 1 disables; 0 keeps only the most likely token. */
  topP: number;
  /** 1 disables; must be > 0. */
  repetitionPenalty: number;
  /** Seed for the PRNG; omitted = crypto-random seed. */
  seed?: number;
  /** Explicit random source (overrides `seed`). */
  rng?: RandomSource;
  /** OpenAI's logit_bias: added to these tokens' logits first */
  logitBias?: { ids: Int32Array; biases: Float32Array };
  /** OpenAI's additive penalties over the generated tokens (0 disables) */
  presencePenalty?: number;
  frequencyPenalty?: number;
}

/** Validate a sampler/beam config; throws RangeError with a readable message. */
export function validateSamplingParams(c: {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
}): void {
  if (!(c.temperature >= 0) || !Number.isFinite(c.temperature)) {
    throw new RangeError(`temperature must be a finite number >= 0, got ${c.temperature}`);
  }
  if (!Number.isInteger(c.topK) || c.topK < 0) {
    throw new RangeError(`top_k must be an integer >= 0, got ${c.topK}`);
  }
  if (!(c.topP >= 0 && c.topP <= 1)) throw new RangeError(`top_p must be in [0, 1], got ${c.topP}`);
  if (!(c.repetitionPenalty > 0) || !Number.isFinite(c.repetitionPenalty)) {
    throw new RangeError(`repetition_penalty must be > 0, got ${c.repetitionPenalty}`);
  }
}

export class TokenSampler {
  readonly greedy: boolean;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly repetitionPenalty: number;
  readonly rng: RandomSource;
  private idx: Int32Array = new Int32Array(0);
  private weights: Float64Array = new Float64Array(0);
  /** the allowed tokens' logits, for sampleAmong */
  private compact: Float32Array = new Float32Array(0);
  private readonly logitBias: SamplerConfig["logitBias"] | null;
  private readonly presence: number;
  private readonly frequency: number;
  /** generated tokens, counted for the presence and frequency penalties (null when both are 0) */
  private readonly counts: OutputCounts | null;

  constructor(config: SamplerConfig) {
    validateSamplingParams(config);
    this.greedy = !config.doSample || config.temperature < MIN_TEMPERATURE;
    this.temperature = config.temperature;
    this.topK = config.topK;
    this.topP = config.topP;
    this.repetitionPenalty = config.repetitionPenalty;
    this.rng = config.rng ?? new Rng(config.seed);
    this.logitBias = config.logitBias && config.logitBias.ids.length > 0 ? config.logitBias : null;
    this.presence = config.presencePenalty ?? 0;
    this.frequency = config.frequencyPenalty ?? 0;
    if (!Number.isFinite(this.presence) || !Number.isFinite(this.frequency)) throw new RangeError("presence and frequency penalties must be finite");
    this.counts = this.presence !== 0 || this.frequency !== 0 ? new OutputCounts() : null;
  }

  /**
   * True when the choice is plain argmax of the raw row (greedy, no processor changes the logits):
   * callers may then compute it wherever it is cheapest (the engine does it natively).
   */
  get plainGreedy(): boolean {
    return this.greedy && this.repetitionPenalty === 1 && this.logitBias === null && this.counts === null;
  }

  /**
   * Choose the next token from a raw logits row (modified in place, see the
   * module comment). `seen` is the sequence's prompt + generated history, used
   * by the repetition penalty; the caller appends the returned token to it.
   */
  sample(logits: Float32Array, seen: TokenHistory | null): number {
    this.#penalize(logits, seen);
    const token = this.choose(logits);
    this.counts?.add(token);
    return token;
  }

  /**
   * sample() over only `ids[0..count)` (increasing token ids; every other token excluded, as a
   * constraint's mask excludes them): the same processors, then the choice on a compact copy of those
   * tokens' logits, so a row that allows few tokens costs O(count) instead of O(vocabulary). The
   * distribution is the masked row's; the token a given seed draws may differ from sample()'s on the
   * masked row (top-k sees the smaller row).
   */
  sampleAmong(logits: Float32Array, ids: Int32Array, count: number, seen: TokenHistory | null): number {
    this.#penalize(logits, seen); // keyed by token, they touch only their own tokens: on the full row
    if (this.compact.length < count) this.compact = new Float32Array(count);
    const values = this.compact.subarray(0, count);
    for (let j = 0; j < count; j++) values[j] = logits[ids[j]!]!;
    const token = ids[this.choose(values)]!;
    this.counts?.add(token);
    return token;
  }

  /** The processors keyed by token, in HF's order: logit bias, presence/frequency penalties, repetition penalty. */
  #penalize(logits: Float32Array, seen: TokenHistory | null): void {
    if (this.logitBias) applyLogitBias(logits, this.logitBias.ids, this.logitBias.biases);
    if (this.counts) this.counts.applyPenalties(logits, this.presence, this.frequency);
    if (seen !== null && this.repetitionPenalty !== 1) applyRepetitionPenaltyDistinct(logits, seen.distinctIds, seen.distinctCount, this.repetitionPenalty);
  }

  /** The choice over a processed row: greedy, or temperature, top-k and top-p, then one draw. */
  private choose(logits: Float32Array): number {
    if (this.greedy) return argmax(logits);
    const n = logits.length;
    if (n === 0) throw new RangeError("TokenSampler.sample: empty logits row");
    // top_k 1 keeps only the largest logit (temperature is monotone): decided before scaling, which
    // could round two tiny logits into a tie (1.4e-45 / 2 is 0 in float32); real ties still draw
    const top = this.topK === 1 ? uniqueArgmax(logits) : -1;
    if (top >= 0) return top;
    this.ensureScratch(n);
    const overflowed = scaleByTemperature(logits, this.temperature);
    if (overflowed >= 0) return overflowed; // one-hot in the limit: greedy

    const useTopK = this.topK > 0 && this.topK < n;
    const useTopP = this.topP < 1;
    if (useTopK) {
      let count = topKCandidates(logits, this.topK, this.idx);
      if (useTopP) count = topPCut(logits, this.idx, count, this.topP);
      return drawFromCandidates(logits, this.idx, count, this.weights, this.rng);
    }
    if (useTopP) {
      const count = topPSelect(logits, this.topP, this.idx, 64, this.weights);
      return drawWeightedCandidates(this.idx, count, this.weights, this.rng);
    }
    return drawFromRow(logits, this.weights, this.rng);
  }

  private ensureScratch(n: number): void {
    if (this.idx.length < n) {
      this.idx = new Int32Array(n);
      this.weights = new Float64Array(n);
    }
  }
}
