// `bun bench/attention-depth.ts [--models=smollm2,bench] [--depths=32,600,1800,3600]`: per-token
// llama_decode time against depth for each attention candidate — upstream flash attention on and
// off, with upstream llama.cpp and with native/patches — for 1 sequence and for 8 decoded together (per-
// sequence KV streams, as the server runs). One child process per library (the upstream one is
// built by `LLAMA_PATCHES=0 build-native.sh`); within a child the settings' steps alternate, and
// each cell is the fastest of 5 steps. Writes its table into bench/results-depth.md.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { cacheRoot } from "../src/gguf/paths.ts";
import { Batch, Context, Model } from "../src/native/index.ts";
import { cpuModel, writeSection } from "./table.ts";

const arg = (name: string, def: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const depths = arg("depths", "32,600,1800,3600").split(",").map(Number);
const SEQS = 8;
const STEPS = 5;

/** ms per decode step at each depth: `nSeq` sequences, one token each, for each setting (alternating). */
function measure(model: Model, nSeq: number, settings: number[], depths: number[]): number[][] {
  const nCtx = Math.ceil((depths[depths.length - 1]! + 2 * STEPS + 4) / 256) * 256;
  const runs = settings.map((flashAttn) => new Context(model, { nCtx: nCtx * nSeq, nBatch: 512, nSeqMax: nSeq, threads: 2, threadsBatch: 2, flashAttn, kvUnified: false, threadPoll: 0 }));
  using batch = new Batch(512, nSeq);
  const nVocab = model.info.nVocab;
  const pos = runs.map(() => 0);
  const out = runs.map(() => [] as number[]);
  const decode = (i: number, n: number) => {
    batch.clear();
    for (let s = 0; s < nSeq; s++) for (let k = 0; k < n; k++) batch.add((pos[i]! + k) * 7919 % nVocab, pos[i]! + k, s, k === n - 1);
    if (runs[i]!.decode(batch) !== 0) throw new Error("decode failed");
    pos[i]! += n;
  };
  try {
    for (const depth of depths) {
      runs.forEach((_, i) => {
        while (pos[i]! < depth) decode(i, Math.min(Math.floor(512 / nSeq), depth - pos[i]!));
        decode(i, 1);
      });
      const best = runs.map(() => Infinity);
      for (let k = 0; k < STEPS; k++) {
        runs.forEach((_, i) => {
          const t0 = performance.now();
          decode(i, 1);
          best[i] = Math.min(best[i]!, performance.now() - t0);
        });
      }
      best.forEach((ms, i) => out[i]!.push(ms));
    }
    return out;
  } finally {
    for (const c of runs) c.free();
  }
}

if (process.argv.includes("--child")) {
  const result: Record<string, { one: number[][]; many: number[][] }> = {};
  for (const name of arg("models", "smollm2,bench").split(",")) {
    const model = Model.load(name === "smollm2" ? await ensureDefaultModel() : await ensureModel(name as "bench"));
    // 8 sequences stop at depth 1800: deeper, filling 8 × 2 contexts takes minutes on 2 cores
    result[name] = { one: measure(model, 1, [1, 0], depths), many: measure(model, SEQS, [1, 0], depths.filter((d) => d <= 1800)) };
    model.free();
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

const build = (env: Record<string, string>) => {
  const r = spawnSync("bash", [join(import.meta.dir, "../build-native.sh")], { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error("build-native.sh failed");
};
const upstreamLib = join(cacheRoot(), "upstream", "libllmshim.so");
build({ LLAMA_PATCHES: "0", LLM_LIB_OUT: upstreamLib });
build({});
const run = (lib: string) => {
  const r = spawnSync(process.execPath, [import.meta.path, "--child", ...process.argv.slice(2)], { env: { ...process.env, LLM_LIB_PATH: lib }, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`child failed with ${lib}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, { one: number[][]; many: number[][] }>;
};
const upstream = run(upstreamLib);
const patched = run(join(import.meta.dir, "../native/build/libllmshim.so"));

const lines = [
  `llama_decode ms per step against depth (fastest of ${STEPS}), 2 threads, per-sequence KV streams, ${cpuModel()}, ${new Date().toISOString()}. Flash attention on and off, with upstream llama.cpp and with native/patches (the served library: every matmul row through one kernel, whatever the batch). "best" = the fastest of the row; the served library's choice is its faster setting.`,
  "",
  "| model | sequences × 1 token | depth | upstream FA on | upstream FA off | patched FA on | patched FA off | best | patched off vs upstream on |",
  "|---|---|---|---|---|---|---|---|---|",
];
const names = ["upstream FA on", "upstream FA off", "patched FA on", "patched FA off"];
for (const name of Object.keys(upstream)) {
  for (const [shape, key] of [["1", "one"], [String(SEQS), "many"]] as const) {
    depths.forEach((depth, d) => {
      if (upstream[name]![key][0]![d] === undefined) return;
      const cells = [upstream[name]![key][0]![d]!, upstream[name]![key][1]![d]!, patched[name]![key][0]![d]!, patched[name]![key][1]![d]!];
      const best = names[cells.indexOf(Math.min(...cells))];
      lines.push(`| ${name} | ${shape} | ${depth} | ${cells.map((c) => c.toFixed(2)).join(" | ")} | ${best} | ${(cells[0]! / cells[3]!).toFixed(2)}× |`);
    });
  }
}
const table = lines.join("\n");
console.log(table);
writeSection(join(import.meta.dir, "results-depth.md"), "attention", `Command: \`bun bench/attention-depth.ts ${process.argv.slice(2).join(" ")}\`\n\n${table}`);
process.exit(0);
