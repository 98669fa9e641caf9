// FLASH_ATTN=fastest: which attention decodes faster for this model on this backend, measured once
// at startup and cached, not guessed. (The default, auto, is llama.cpp's own choice: flash attention
// where the backend has it, which keeps a sequence's numbers independent of its batch neighbours;
// bench/results-depth.md says why that is the default on CPUs although it is slower at depth.) On a 2-core CPU flash attention wins only at
// shallow depth (SmolLM2: 11 vs 13 ms a token at depth 32) and loses 1.6-2x past a few hundred
// tokens; on a GPU it usually wins everywhere. The probe decodes one sequence with each setting and
// times single-token steps at two depths; the setting with the lower sum of the two per-token
// times wins (so a setting that is much faster at depth is not given up for a small gain at the
// start). bench/results-depth.md has the measurements behind this.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheRoot } from "../gguf/paths.ts";
import { Batch, Context, type Model } from "../native/index.ts";

export interface AttentionChoice {
  /** -1 auto (llama.cpp decides: on where the backend supports it), 0 off, 1 on: what the context is created with */
  flashAttn: -1 | 0 | 1;
  /** setting: FLASH_ATTN forced it; probe: measured now; cached: measured by an earlier start */
  source: "setting" | "probe" | "cached";
  /** per-token decode ms at each probed depth, by setting (absent when forced) */
  probe?: { depths: number[]; onMs: number[]; offMs: number[] };
}

export interface ProbeOptions {
  threads: number;
  threadPoll: number;
  /** the largest depth the server's context allows (the deep point is capped to it) */
  maxDepth: number;
  /** identifies model + library + backend + threads: the cache file's key */
  cacheKey: string;
  /** where the result is kept (default: the cache root's probe/ folder); null: not cached */
  cacheDir?: string | null;
  /** below this share of its threads' CPU time the probe ran contended and is not kept (default 0.6) */
  minCpuShare?: number;
}

export const PROBE_DEPTHS = [32, 512] as const;
const STEPS = 5; // timed single-token steps per depth and setting, after one untimed warm-up step each

/**
 * Per-token decode ms of one sequence at each depth, for each flash-attention setting given. The
 * settings' steps alternate, so both see the same machine; each depth keeps its fastest step (a busy
 * machine only ever adds time: the minimum is the least disturbed measurement).
 */
export function measureDecode(model: Model, settings: (0 | 1)[], depths: number[], threads: number, threadPoll: number): number[][] {
  const deepest = depths[depths.length - 1]!;
  const nCtx = Math.ceil((deepest + 2 * STEPS + 2) / 256) * 256;
  const nVocab = model.info.nVocab;
  const token = (pos: number) => (pos * 7919 + 13) % nVocab; // any ids: attention cost does not depend on them
  const runs = settings.map((flashAttn) => ({
    ctx: new Context(model, { nCtx, nBatch: 512, nSeqMax: 1, threads, threadsBatch: threads, flashAttn, threadPoll }),
    pos: 0,
  }));
  using batch = new Batch(512, 1);
  const decode = (run: (typeof runs)[number], n: number) => {
    batch.clear();
    for (let end = run.pos + n; run.pos < end; run.pos++) batch.add(token(run.pos), run.pos, 0, run.pos === end - 1);
    if (run.ctx.decode(batch) !== 0) throw new Error(`attention probe: decode failed at depth ${run.pos}`);
  };
  const timed = (run: (typeof runs)[number]) => {
    const t0 = performance.now();
    decode(run, 1);
    return performance.now() - t0;
  };
  try {
    const out = runs.map(() => [] as number[]);
    for (const depth of depths) {
      for (const run of runs) {
        while (run.pos < depth) decode(run, Math.min(512, depth - run.pos));
        decode(run, 1); // warm-up: the first step after a prompt batch may re-reserve the graph
      }
      const best = runs.map(() => Infinity);
      for (let k = 0; k < STEPS; k++) runs.forEach((run, i) => (best[i] = Math.min(best[i]!, timed(run))));
      best.forEach((ms, i) => out[i]!.push(ms));
    }
    return out;
  } finally {
    for (const run of runs) run.ctx.free();
  }
}

/** The rule: the lower sum of per-token times over the probed depths; a tie keeps flash attention. */
export function pickAttention(onMs: number[], offMs: number[]): 0 | 1 {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return sum(offMs) < sum(onMs) ? 0 : 1;
}

/** The attention setting to serve with: FLASH_ATTN when it is auto, on or off; for fastest the probe's (cached) answer. */
export function chooseAttention(model: Model, setting: number, o: ProbeOptions): AttentionChoice {
  if (setting === -1 || setting === 0 || setting === 1) return { flashAttn: setting, source: "setting" };
  const dir = o.cacheDir === undefined ? join(cacheRoot(), "probe") : o.cacheDir;
  const file = dir ? join(dir, `attention-${new Bun.CryptoHasher("sha256").update(o.cacheKey).digest("hex").slice(0, 24)}.json`) : null;
  if (file && existsSync(file)) {
    try {
      const kept = JSON.parse(readFileSync(file, "utf8")) as AttentionChoice;
      if ((kept.flashAttn === 0 || kept.flashAttn === 1) && kept.probe) return { ...kept, source: "cached" };
    } catch {} // unreadable: measure again
  }
  const depths = PROBE_DEPTHS.map((d) => Math.min(d, Math.max(8, o.maxDepth - STEPS - 2)));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const [onMs, offMs] = measureDecode(model, [1, 0], depths, o.threads, o.threadPoll) as [number[], number[]];
  const choice: AttentionChoice = { flashAttn: pickAttention(onMs, offMs), source: "probe", probe: { depths, onMs, offMs } };
  // Other work took our cores (the decode threads got well under their share of the CPU): the
  // answer serves this start, but is not kept, so that the next start measures again.
  const used = process.cpuUsage(cpu0);
  const cpuMs = (used.user + used.system) / 1000;
  const contended = cpuMs < (o.minCpuShare ?? 0.6) * (performance.now() - t0) * (o.threads || navigator.hardwareConcurrency || 1);
  if (file && dir && !contended) {
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(choice));
      renameSync(tmp, file);
    } catch {} // a read-only cache only costs the probe at the next start
  }
  return choice;
}

/** One line for the startup log. */
export function describeAttention(c: AttentionChoice): string {
  const name = c.flashAttn === -1 ? "auto" : c.flashAttn ? "on" : "off";
  if (!c.probe) return `flash attention ${name} (FLASH_ATTN)`;
  const ms = (xs: number[]) => xs.map((x) => x.toFixed(1)).join("/");
  return `flash attention ${name}, by ${c.source === "cached" ? "an earlier" : "a startup"} probe: per-token ms at depth ${c.probe.depths.join("/")}: on ${ms(c.probe.onMs)}, off ${ms(c.probe.offMs)}`;
}
