// Synthetic llama-architecture GGUF models with deterministic random weights and a real vocab.
//
// Design notes:
// - Embedding dim 0 is a "bias channel": token_embd[:, 0] is a constant for every token, and no
//   layer reads or writes it (input column 0 of q/k/v/gate/up and output row 0 of attn_output /
//   ffn_down are zero). After the final RMSNorm it is a near-constant, so output.weight[:, 0]
//   acts as a per-token logit bias: unknown/control/user-defined/unused tokens get a large
//   negative bias (never generated), EOS gets `eosBias` when that is non-zero. Byte tokens
//   (<0xNN>) stay ordinary, so output can contain partial / invalid UTF-8 sequences.
// - Other weights are ~N(0, 1/fan_in); output rows have norm `outputScale`, so logits have a
//   standard deviation of roughly outputScale: large values give peaky (stable greedy) output.
import { resolveVocab } from "./paths.ts";
import { readGguf } from "./reader.ts";
import { Rng, hashSeed } from "./prng.ts";
import { GgmlType, GgufType, getNumber, getStringArray, gv, type GgufValue } from "./types.ts";
import { writeGguf, type TensorInput } from "./writer.ts";

export interface SynthSpec {
  /**
   * A ggml-vocab-*.gguf file path, or a short name such as "llama-spm" resolved in llama.cpp's
   * models/ folder (see paths.ts). All tokenizer.* keys are copied from it.
   */
  vocabPath: string;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  nCtxTrain: number;
  seed: number;
  dtype: "f32" | "f16";
  /** Logit scale (~ standard deviation of the logits). Default DEFAULT_OUTPUT_SCALE. */
  outputScale?: number;
  /** Approximate logit bias of the EOS token; 0 (default) = EOS is suppressed like other control tokens. */
  eosBias?: number;
  name?: string;
  ropeFreqBase?: number;
  rmsEps?: number;
  /** Optional tokenizer.chat_template to set (overrides one copied from the vocab). */
  chatTemplate?: string;
}

/** Bump when generated weights or metadata change, so cached models are regenerated. */
export const SYNTH_GENERATOR_VERSION = 3;
export const DEFAULT_OUTPUT_SCALE = 12;

/** Value of the bias channel relative to sqrt(nEmbd) (the other channels have unit scale). */
const BIAS_CHANNEL = 1;
/** Estimated rms of the non-bias residual channels at the output (calibrated empirically). */
const RESIDUAL_RMS_ESTIMATE = 1.1;
/** attn_output / ffn_down are scaled by (2 * nLayer) ^ -RESIDUAL_DAMPING. */
const RESIDUAL_DAMPING = 0.25;
/** Bias for control / unknown / unused tokens, in units of outputScale. */
const CONTROL_SUPPRESSION = -8;
const CHUNK_ELEMENTS = 1 << 20;

// llama.cpp token types
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4; // chat markers such as phi-3's <|end|> (which llama.cpp treats as EOG)
const TOKEN_UNUSED = 5;
const SUPPRESSED_TYPES = new Set([TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED]);

export interface TensorPlan {
  name: string;
  dims: number[];
  type: GgmlType;
}

export interface SynthResult {
  path: string;
  params: number;
  bytes: number;
  ms: number;
  nVocab: number;
}

export function validateSpec(spec: SynthSpec): void {
  const ints: (keyof SynthSpec)[] = ["nEmbd", "nLayer", "nHead", "nHeadKv", "nFf", "nCtxTrain"];
  for (const k of ints) {
    const v = spec[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new Error(`spec.${k} must be a positive integer`);
  }
  if (!Number.isInteger(spec.seed)) throw new Error("spec.seed must be an integer");
  if (spec.nEmbd % spec.nHead !== 0) throw new Error("spec.nEmbd must be divisible by spec.nHead");
  if (spec.nHead % spec.nHeadKv !== 0) throw new Error("spec.nHead must be divisible by spec.nHeadKv");
  if ((spec.nEmbd / spec.nHead) % 2 !== 0) throw new Error("head dimension must be even (RoPE)");
  if (spec.dtype !== "f32" && spec.dtype !== "f16") throw new Error("spec.dtype must be 'f32' or 'f16'");
}

/** Tensor names, ggml dims and types for a llama model (dims[0] = row length). */
export function planTensors(spec: SynthSpec, nVocab: number): TensorPlan[] {
  const { nEmbd, nFf } = spec;
  const headDim = nEmbd / spec.nHead;
  const nQ = headDim * spec.nHead;
  const nKv = headDim * spec.nHeadKv;
  const mat = spec.dtype === "f16" ? GgmlType.F16 : GgmlType.F32;
  const plan: TensorPlan[] = [
    { name: "token_embd.weight", dims: [nEmbd, nVocab], type: mat },
    { name: "output_norm.weight", dims: [nEmbd], type: GgmlType.F32 },
    { name: "output.weight", dims: [nEmbd, nVocab], type: mat },
  ];
  for (let i = 0; i < spec.nLayer; i++) {
    const p = `blk.${i}.`;
    plan.push(
      { name: `${p}attn_norm.weight`, dims: [nEmbd], type: GgmlType.F32 },
      { name: `${p}attn_q.weight`, dims: [nEmbd, nQ], type: mat },
      { name: `${p}attn_k.weight`, dims: [nEmbd, nKv], type: mat },
      { name: `${p}attn_v.weight`, dims: [nEmbd, nKv], type: mat },
      { name: `${p}attn_output.weight`, dims: [nQ, nEmbd], type: mat },
      { name: `${p}ffn_norm.weight`, dims: [nEmbd], type: GgmlType.F32 },
      { name: `${p}ffn_gate.weight`, dims: [nEmbd, nFf], type: mat },
      { name: `${p}ffn_up.weight`, dims: [nEmbd, nFf], type: mat },
      { name: `${p}ffn_down.weight`, dims: [nFf, nEmbd], type: mat },
    );
  }
  return plan;
}

export function countParams(plan: TensorPlan[]): number {
  return plan.reduce((acc, t) => acc + t.dims.reduce((a, b) => a * b, 1), 0);
}

/** How a row of a weight matrix is filled. */
type RowFill = (row: Float32Array, rowIndex: number, rng: Rng) => void;

function tensorChunks(plan: TensorPlan, seed: number, fill: RowFill): () => Iterable<Float32Array> {
  const cols = plan.dims[0];
  const rows = plan.dims.length > 1 ? plan.dims[1] : 1;
  return function* () {
    const rng = new Rng(hashSeed(seed, plan.name));
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / cols));
    const buf = new Float32Array(Math.min(rows, rowsPerChunk) * cols);
    for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, rows - r0);
      for (let r = 0; r < n; r++) fill(buf.subarray(r * cols, (r + 1) * cols), r0 + r, rng);
      yield n * cols === buf.length ? buf : buf.subarray(0, n * cols);
    }
  };
}

function copyTokenizerKeys(vocabPath: string): { meta: [string, GgufValue][]; nVocab: number; eosId: number; types?: Int32Array } {
  const vocab = readGguf(vocabPath);
  const meta = [...vocab.metadata].filter(([k]) => k.startsWith("tokenizer."));
  const tokens = getStringArray(vocab.metadata, "tokenizer.ggml.tokens");
  if (!tokens || tokens.length === 0) throw new Error(`vocab file has no tokenizer.ggml.tokens: ${vocabPath}`);
  const eosId = getNumber(vocab.metadata, "tokenizer.ggml.eos_token_id") ?? -1;
  const tt = vocab.metadata.get("tokenizer.ggml.token_type");
  const types = tt?.type === GgufType.ARRAY && tt.value instanceof Int32Array ? tt.value : undefined;
  return { meta, nVocab: tokens.length, eosId, types };
}

/** Generate a synthetic llama model and write it to outPath (not atomically; see models.ts). */
export function writeSyntheticModel(spec: SynthSpec, outPath: string): SynthResult {
  const t0 = performance.now();
  validateSpec(spec);
  const { meta: tokMeta, nVocab, eosId, types } = copyTokenizerKeys(resolveVocab(spec.vocabPath));
  const { nEmbd, seed } = spec;
  const outputScale = spec.outputScale ?? DEFAULT_OUTPUT_SCALE;
  const eosBias = spec.eosBias ?? 0;
  const headDim = nEmbd / spec.nHead;

  // Logit bias per token, applied through the bias channel.
  const biasChannel = BIAS_CHANNEL * Math.sqrt(nEmbd);
  const h0 = (BIAS_CHANNEL * Math.sqrt(nEmbd)) / Math.sqrt(BIAS_CHANNEL ** 2 + RESIDUAL_RMS_ESTIMATE ** 2);
  const tokenBias = new Float32Array(nVocab);
  if (types) {
    for (let t = 0; t < nVocab; t++) {
      if (SUPPRESSED_TYPES.has(types[t])) tokenBias[t] = CONTROL_SUPPRESSION * outputScale;
    }
  }
  if (eosId >= 0 && eosId < nVocab) tokenBias[eosId] = eosBias !== 0 ? eosBias : CONTROL_SUPPRESSION * outputScale;

  const gauss = (scale: number, skipFirst: boolean): RowFill => (row, _r, rng) => {
    rng.fillNormal(row, 0, row.length, scale);
    if (skipFirst) row[0] = 0;
  };
  const zeroFirstRow = (scale: number): RowFill => (row, r, rng) => {
    rng.fillNormal(row, 0, row.length, scale);
    if (r === 0) row.fill(0);
  };
  // Damp what each layer adds to the residual stream so deep models stay driven by the current
  // token (less collapse into short cycles) while attention still makes output context-dependent.
  const residualScale = (2 * spec.nLayer) ** -RESIDUAL_DAMPING;
  const ones: RowFill = (row) => row.fill(1);
  const fills: Record<string, RowFill> = {
    token_embd: (row, _r, rng) => {
      rng.fillNormal(row, 1, row.length, 1);
      row[0] = biasChannel;
    },
    output: (row, r, rng) => {
      rng.fillNormal(row, 1, row.length, 1);
      let ss = 0;
      for (let i = 1; i < row.length; i++) ss += row[i] * row[i];
      const k = outputScale / Math.sqrt(ss || 1);
      for (let i = 1; i < row.length; i++) row[i] *= k;
      row[0] = tokenBias[r] / h0;
    },
    attn_q: gauss(1 / Math.sqrt(nEmbd - 1), true),
    attn_k: gauss(1 / Math.sqrt(nEmbd - 1), true),
    attn_v: gauss(1 / Math.sqrt(nEmbd - 1), true),
    ffn_gate: gauss(1 / Math.sqrt(nEmbd - 1), true),
    ffn_up: gauss(1 / Math.sqrt(nEmbd - 1), true),
    attn_output: zeroFirstRow(residualScale / Math.sqrt(headDim * spec.nHead)),
    ffn_down: zeroFirstRow(residualScale / Math.sqrt(spec.nFf)),
  };

  const plan = planTensors(spec, nVocab);
  const tensors: TensorInput[] = plan.map((p) => {
    const kind = p.name.replace(/^blk\.\d+\./, "").replace(/\.weight$/, "");
    const fill = kind.endsWith("norm") ? ones : fills[kind];
    if (!fill) throw new Error(`no initializer for tensor ${p.name}`);
    return { name: p.name, dims: p.dims, type: p.type, data: tensorChunks(p, seed, fill) };
  });

  const metadata = new Map<string, GgufValue>([
    ["general.architecture", gv.str("llama")],
    ["general.name", gv.str(spec.name ?? "synthetic-llama")],
    ["general.file_type", gv.u32(spec.dtype === "f16" ? 1 : 0)],
    ["llama.context_length", gv.u32(spec.nCtxTrain)],
    ["llama.embedding_length", gv.u32(nEmbd)],
    ["llama.block_count", gv.u32(spec.nLayer)],
    ["llama.feed_forward_length", gv.u32(spec.nFf)],
    ["llama.attention.head_count", gv.u32(spec.nHead)],
    ["llama.attention.head_count_kv", gv.u32(spec.nHeadKv)],
    ["llama.rope.dimension_count", gv.u32(headDim)],
    ["llama.rope.freq_base", gv.f32(spec.ropeFreqBase ?? 10000)],
    ["llama.attention.layer_norm_rms_epsilon", gv.f32(spec.rmsEps ?? 1e-5)],
    ["llama.vocab_size", gv.u32(nVocab)],
    ...tokMeta,
  ]);
  if (spec.chatTemplate !== undefined) metadata.set("tokenizer.chat_template", gv.str(spec.chatTemplate));

  const { bytes } = writeGguf(outPath, metadata, tensors);
  return { path: outPath, params: countParams(plan), bytes, ms: performance.now() - t0, nVocab };
}
