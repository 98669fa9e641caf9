// Generate a synthetic llama GGUF model (cached by spec under $LLM_CACHE_DIR/models unless --out).
//   bun run scripts/make-model.ts -- --preset tiny
//   bun run scripts/make-model.ts -- --vocab llama-bpe --embd 512 --layers 6 --out /tmp/m.gguf
import { existsSync, rmSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { PRESETS, ensureModelSync, modelPath, presetParams, presetSpec, writeModelAtomic } from "../src/gguf/models.ts";
import type { SynthSpec } from "../src/gguf/synth-model.ts";
import { readGguf } from "../src/gguf/reader.ts";
import { getStringArray } from "../src/gguf/types.ts";

const USAGE = `usage: bun run scripts/make-model.ts -- [--preset NAME] [options]
  --preset NAME        one of: ${Object.keys(PRESETS).join(", ")} (default tiny; flags below override it)
  --vocab NAME|PATH    ggml-vocab short name (llama-spm, llama-bpe, gpt-2, ...) or a .gguf path
  --embd N  --layers N  --heads N  --heads-kv N  --ff N  --ctx N  --seed N
  --dtype f32|f16      --output-scale X  --eos-bias X  --name NAME
  --out PATH           write here instead of the cache (overwrites)
  --force              regenerate even when the cached file exists`;

function main(): void {
  const argv = process.argv.slice(2).filter((a) => a !== "--");
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      preset: { type: "string" },
      vocab: { type: "string" },
      embd: { type: "string" },
      layers: { type: "string" },
      heads: { type: "string" },
      "heads-kv": { type: "string" },
      ff: { type: "string" },
      ctx: { type: "string" },
      seed: { type: "string" },
      dtype: { type: "string" },
      "output-scale": { type: "string" },
      "eos-bias": { type: "string" },
      name: { type: "string" },
      out: { type: "string" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const num = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${flag} must be a number, got "${v}"`);
    return n;
  };
  const base = presetSpec(values.preset ?? "tiny");
  const overrides: Partial<SynthSpec> = {
    vocabPath: values.vocab,
    nEmbd: num("embd", values.embd),
    nLayer: num("layers", values.layers),
    nHead: num("heads", values.heads),
    nHeadKv: num("heads-kv", values["heads-kv"]),
    nFf: num("ff", values.ff),
    nCtxTrain: num("ctx", values.ctx),
    seed: num("seed", values.seed),
    dtype: values.dtype as SynthSpec["dtype"] | undefined,
    outputScale: num("output-scale", values["output-scale"]),
    eosBias: num("eos-bias", values["eos-bias"]),
    name: values.name,
  };
  const changed = Object.entries(overrides).filter(([, v]) => v !== undefined);
  const spec: SynthSpec = { ...base, ...Object.fromEntries(changed) };
  if (changed.length > 0 && values.name === undefined) spec.name = `${base.name ?? "custom"}-custom`;
  if (spec.nHeadKv > spec.nHead) spec.nHeadKv = spec.nHead; // e.g. --heads 4 on a preset with 4+ kv heads

  const t0 = performance.now();
  let path: string;
  let generated = true;
  if (values.out) {
    path = values.out;
    writeModelAtomic(spec, path);
  } else {
    path = modelPath(spec);
    if (values.force) rmSync(path, { force: true });
    generated = !existsSync(path);
    ensureModelSync(spec);
  }
  const secs = (performance.now() - t0) / 1000;
  const file = readGguf(path);
  const nVocab = getStringArray(file.metadata, "tokenizer.ggml.tokens")?.length ?? 0;
  const params = presetParams(spec, nVocab);
  const mb = statSync(path).size / 1e6;
  console.log(path);
  console.log(
    `${spec.name ?? "custom"}: ${(params / 1e6).toFixed(2)}M params, vocab ${nVocab}, ${spec.dtype}, ` +
      `${mb.toFixed(1)} MB, ${generated ? `written in ${secs.toFixed(2)} s` : "cached"}`,
  );
}

try {
  main();
} catch (e) {
  console.error(`make-model: ${(e as Error).message}`);
  process.exit(1);
}
