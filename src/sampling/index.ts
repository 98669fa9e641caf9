/** Public API of the sampling module (pure TypeScript, no native code). */
export { Rng, type RandomSource } from "./rng.ts";
export {
  argmax,
  applyRepetitionPenalty,
  applyRepetitionPenaltyDistinct,
  logSoftmax,
  logSoftmaxInPlace,
  logSumExp,
  scaleByTemperature,
  softmaxInPlace,
  sortIndicesByValueDesc,
  topKIndices,
} from "./logits.ts";
export { topKCandidates, topKFilterInPlace, topPCut, topPFilterInPlace, topPSelect } from "./warpers.ts";
export { drawFromCandidates, drawFromRow, drawWeightedCandidates } from "./draw.ts";
export { TokenHistory } from "./token-history.ts";
export {
  HF_GENERATION_DEFAULTS,
  TokenSampler,
  validateSamplingParams,
  type SamplerConfig,
} from "./sampler.ts";
export {
  BeamSearch,
  type BeamSearchConfig,
  type BeamSearchResult,
  type StepResult,
} from "./beam-search.ts";
