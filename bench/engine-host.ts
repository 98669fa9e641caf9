// Profile run for the host-overhead rows: the engine in-process (no HTTP thread, no messages, no
// client on the machine), greedy, batch 1 and batch 16. Prints one JSON line.
// `bun bench/engine-host.ts MODEL_PATH THREADS PARALLEL CTX`
import { loadSettings } from "../src/config.ts";
import { contextOptions } from "../src/engine/context-options.ts";
import { Engine } from "../src/engine/engine.ts";
import { median } from "./stats.ts";
import { Context, Model } from "../src/native/index.ts";

const [modelPath, threads = "2", parallel = "16", ctxSize = "2048"] = process.argv.slice(2);
if (!modelPath) throw new Error("usage: bun bench/engine-host.ts MODEL_PATH [THREADS PARALLEL CTX]");
const settings = loadSettings({ ...process.env, MODEL_PATH: modelPath, THREADS: threads, THREADS_BATCH: threads, PARALLEL: parallel, CTX_SIZE: ctxSize, LOG_EVICTIONS: "0" });
const model = Model.load(modelPath);
const ctx = new Context(model, contextOptions(settings));
const engine = new Engine(model, ctx, settings, () => {});
let ticket = 1;

/** `width` requests of `tokens` tokens at once, stepped to completion; host µs per sequence per step. */
function round(width: number, tokens: number): { perSeqUs: number; perStepMs: number; batch: number; decodeMs: number } {
  const config = { ...settings.defaults, do_sample: false, num_beams: 1, max_new_tokens: tokens };
  for (let i = 0; i < width; i++) engine.submit(ticket++, [{ requestId: `host-${ticket}`, prompt: `Profile request ${ticket}: once upon a time` }], true, config);
  let stepUs = 0;
  engine.step(); // the prompts (prefill) are not part of the steady state
  const decode0 = engine.runner.decodeUs, q1 = engine.sequenceSteps, s1 = engine.steps;
  while (engine.busy) {
    const t = performance.now();
    engine.step();
    stepUs += (performance.now() - t) * 1000;
  }
  const steps = engine.steps - s1, seqs = engine.sequenceSteps - q1, decodeUs = engine.runner.decodeUs - decode0;
  return { perSeqUs: (stepUs - decodeUs) / seqs, perStepMs: (stepUs - decodeUs) / steps / 1000, batch: seqs / steps, decodeMs: decodeUs / steps / 1000 };
}

round(16, 48); // warm-up: JIT tiers, weights paged in (the first rounds ran ~2x slower)
round(16, 48);
const b1 = [round(1, 48), round(1, 48), round(1, 48)];
const b16 = [round(16, 48), round(16, 48), round(16, 48)];
console.log(JSON.stringify({
  batch1PerStepMs: median(b1.map((r) => r.perStepMs)), batch1DecodeMs: median(b1.map((r) => r.decodeMs)),
  batch16PerSeqUs: median(b16.map((r) => r.perSeqUs)), batch16DecodeMs: median(b16.map((r) => r.decodeMs)), batch16: median(b16.map((r) => r.batch)),
}));
process.exit(0);
