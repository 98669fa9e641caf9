// Named synthetic model presets and an on-disk cache keyed by spec + generator version.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { isVocabName, modelsDir } from "./paths.ts";
import { SYNTH_GENERATOR_VERSION, countParams, planTensors, writeSyntheticModel, type SynthSpec } from "./synth-model.ts";

const TINY: SynthSpec = {
  name: "tiny",
  vocabPath: "llama-spm",
  nEmbd: 256,
  nLayer: 4,
  nHead: 8,
  nHeadKv: 4,
  nFf: 768,
  nCtxTrain: 4096,
  seed: 1,
  dtype: "f16",
};

export const PRESETS = {
  /** Default server/test model: llama SPM vocab (32000 tokens), ~19.5M params, F16. */
  tiny: TINY,
  /** Same shape, llama-3 BPE vocab (128256 tokens). */
  "tiny-bpe": { ...TINY, name: "tiny-bpe", vocabPath: "llama-bpe" },
  /** Same shape, GPT-2 vocab (50257 tokens, BOS = EOS, no add_bos_token key). */
  "tiny-gpt2": { ...TINY, name: "tiny-gpt2", vocabPath: "gpt-2" },
  /** Same shape, Qwen2 vocab (151k tokens; <tool_call> is a token of its own). */
  "tiny-qwen2": { ...TINY, name: "tiny-qwen2", vocabPath: "qwen2" },
  /** Like tiny, but EOS is favoured: greedy output usually ends within ~5-20 tokens. */
  "tiny-eos": { ...TINY, name: "tiny-eos", eosBias: 22 },
  /** Benchmark model: ~125M params F16 (~250 MB). */
  bench: { ...TINY, name: "bench", nEmbd: 768, nLayer: 12, nHead: 12, nHeadKv: 4, nFf: 2048, nCtxTrain: 8192 },
} satisfies Record<string, SynthSpec>;

export type PresetName = keyof typeof PRESETS;

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

export function presetSpec(name: string): SynthSpec {
  if (!isPresetName(name)) {
    throw new Error(`unknown model preset "${name}" (known: ${Object.keys(PRESETS).join(", ")})`);
  }
  return PRESETS[name];
}

function toSpec(model: PresetName | SynthSpec): SynthSpec {
  return typeof model === "string" ? presetSpec(model) : model;
}

/** Stable identity of the vocab: the short name, or a content hash for an explicit file. */
function vocabIdentity(vocab: string): string {
  if (isVocabName(vocab)) return `name:${vocab}`;
  return `file:${basename(vocab)}:${Bun.hash(readFileSync(vocab)).toString(16)}`;
}

/** Short hash of everything that affects the generated file. */
export function specHash(spec: SynthSpec): string {
  const entries = Object.entries({ ...spec, vocabPath: vocabIdentity(spec.vocabPath) })
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const key = JSON.stringify([SYNTH_GENERATOR_VERSION, entries]);
  return new Bun.CryptoHasher("sha256").update(key).digest("hex").slice(0, 10);
}

/** Cache path for a model (the file may not exist yet). */
export function modelPath(model: PresetName | SynthSpec): string {
  const spec = toSpec(model);
  const name = (spec.name ?? "custom").replace(/[^A-Za-z0-9._-]+/g, "_");
  return join(modelsDir(), `${name}-${specHash(spec)}.gguf`);
}

/** Parameter count of a model without generating it (needs the vocab to know its size). */
export function presetParams(model: PresetName | SynthSpec, nVocab: number): number {
  return countParams(planTensors(toSpec(model), nVocab));
}

const pending = new Map<string, Promise<string>>();

/**
 * Path of the cached model, generating it first when missing. The file is written under a
 * temporary name and renamed into place, so concurrent processes never see a partial file.
 */
export function ensureModel(model: PresetName | SynthSpec): Promise<string> {
  const path = modelPath(model);
  if (existsSync(path)) return Promise.resolve(path);
  let p = pending.get(path);
  if (!p) {
    p = Promise.resolve().then(() => ensureModelSync(model));
    pending.set(path, p);
    p.then(
      () => pending.delete(path),
      () => pending.delete(path),
    );
  }
  return p;
}

/** Synchronous ensureModel (for CLIs and test setup). */
export function ensureModelSync(model: PresetName | SynthSpec): string {
  const spec = toSpec(model);
  const path = modelPath(spec);
  if (existsSync(path)) return path;
  mkdirSync(modelsDir(), { recursive: true });
  writeModelAtomic(spec, path);
  return path;
}

/** Writes the model under a temporary name and renames it into place: readers never see a partial file. */
export function writeModelAtomic(spec: SynthSpec, path: string): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  try {
    writeSyntheticModel(spec, tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}
