// `bun run bench [--quick] [--reps=N] [--no-depth]`: builds what is missing, starts our server and
// llama-server with the same threads / slots / context, runs the workloads alternating A/B, prints a
// markdown table and writes it to bench/results.md; then bench/depth.ts's rows at depth.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureModel, PRESETS } from "../src/gguf/models.ts";
import { llamaTool } from "../test/helpers/llama-server.ts";
import { runCeiling, type Ceiling } from "./ceiling.ts";
import { oursGenerate, SAMPLED, theirsGenerate } from "./client.ts";
import { HARD_STOP_S, MIN_REPS, planFromArgs, SLOW_AFTER_S } from "./plan.ts";
import { llamaServerCounter, PromptSet } from "./prompts.ts";
import { buildRows, type EngineAlone, type Results } from "./rows.ts";
import { untilQuiet, waits } from "./quiet.ts";
import { memoryOf, ROOT, startOurs, startTheirs, type BenchServer, type Memory, type OurServer } from "./servers.ts";
import { coreCount, cpuBusy, cpuModel, fmt, llamaVersion, loadAverage, renderReport, sectionsOf } from "./table.ts";
import { beamSearch, concurrencyRun, continuation, findings, freshId, hooks, singleStream, verified } from "./workloads.ts";

const plan = planFromArgs(process.argv.slice(2));
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
const say = (msg: string) => console.error(`[bench ${elapsed()}] ${msg}`);
hooks.progress = (msg) => say(`  ${msg}`);
let slowNoted = false;
let stopNoted = false;
hooks.outOfTime = () => {
  if ((performance.now() - started) / 1000 < HARD_STOP_S) return false;
  if (!stopNoted) findings.push(`the run reached ${HARD_STOP_S} s (machine busy?): the runs still to come were skipped; their cells show "–"`);
  stopNoted = true;
  return true;
};
/** Repetitions for the next workload: fewer (but >= 3) once the run is behind its time budget, none when out of time. */
const reps = () => {
  if (hooks.outOfTime()) return 0;
  if (plan.reps <= MIN_REPS || (performance.now() - started) / 1000 < SLOW_AFTER_S) return plan.reps;
  if (!slowNoted) findings.push(`the run passed ${SLOW_AFTER_S} s (machine busy?): later workloads ran ${MIN_REPS} repetitions instead of ${plan.reps}`);
  slowNoted = true;
  return MIN_REPS;
};

let busyBefore = await cpuBusy();
for (let waited = 0; busyBefore > 0.25 && waited < 60; waited += 5) {
  if (waited === 0) say(`CPUs ${(busyBefore * 100).toFixed(0)} % busy with other work: waiting up to 60 s for a quiet machine`);
  await Bun.sleep(4000);
  busyBefore = await cpuBusy();
}
const loadBefore = loadAverage();
if (busyBefore > 0.25) {
  findings.push(`the machine was ${(busyBefore * 100).toFixed(0)} % busy before the run started (other processes): numbers are unreliable, rerun on a quiet machine`);
  say(`WARNING: CPUs ${(busyBefore * 100).toFixed(0)} % busy with other work; results will be noisy`);
}
say(`plan: ${plan.name}, ${plan.reps} rep(s), THREADS ${plan.threads}, PARALLEL ${plan.parallel}, CTX ${plan.ctx}/sequence`);

// ---- prepare: native library + reference tools (one build-native.sh call each, cached), model
llamaTool("llama-server", { upstream: true });
llamaTool("llama-batched-bench");
const modelPath = await ensureModel("bench");
say(`model: ${modelPath}`);

// ---- engine ceiling first, with nothing else running
let ceiling: Ceiling | null = null;
try {
  say(`llama-batched-bench -npp ${plan.ceiling.npp} -ntg ${plan.ceiling.ntg} -npl ${plan.ceiling.npl.join(",")}`);
  ceiling = await runCeiling(modelPath, { threads: plan.threads, ...plan.ceiling });
  say(`ceiling: ${ceiling.rows.map((r) => `npl ${r.npl}: ${r.tgTps} t/s`).join(", ")}`);
} catch (err) {
  findings.push(`llama-batched-bench failed: ${(err as Error).message.split("\n")[0]}`);
}

const shape = { threads: plan.threads, parallel: plan.parallel, ctx: plan.ctx };
let ours: OurServer | null = null;
let theirs: BenchServer | null = null;
const stopAll = async () => {
  await Promise.allSettled([ours?.stop(), theirs?.stop()]);
  ours = theirs = null;
};
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, () => void stopAll().then(() => process.exit(130)));

let results: Results;
let modelFacts: Record<string, unknown> = {};
let prompts: { short: PromptSet; long: PromptSet; cont: PromptSet };
try {
  theirs = await startTheirs(modelPath, shape);
  say(`llama-server up at ${theirs.url} (pid ${theirs.pid})`);
  ours = await startOurs(modelPath, shape);
  say(`our server up at ${ours.url} (pid ${ours.pid})`);
  const o = ours as OurServer;
  const t = theirs as BenchServer;
  modelFacts = ((await (await fetch(`${o.url}/health`)).json()) as { model: Record<string, unknown> }).model;

  const count = llamaServerCounter(t.url);
  prompts = {
    short: await PromptSet.create("Short", plan.shortPrompt, count),
    long: await PromptSet.create("Long", plan.longPrompt, count),
    cont: await PromptSet.create("Context", plan.contPrompt, count),
  };
  say(`prompts: ${prompts.short.tokens} / ${prompts.long.tokens} / ${prompts.cont.tokens} tokens (+BOS)`);

  // warm-up: page the weights in on both sides (not measured)
  await oursGenerate(o.url, { requestId: freshId("warmup"), prompt: prompts.short.get(999), maxNewTokens: 4 });
  await theirsGenerate(t.url, { prompt: prompts.short.get(999), nPredict: 4 });

  say("single stream, short prompt");
  // The machine's speed drifts within minutes: the npl=1 ceiling is measured again right before and
  // after the short single-stream runs (both servers quiet), and the row uses the median of all three.
  const ceilingNow = async () => {
    await untilQuiet(o.pid);
    await untilQuiet(t.pid);
    try {
      const c = await runCeiling(modelPath, { threads: plan.threads, ...plan.ceiling, npl: [1] });
      return c.rows[0]?.tgTps ?? NaN;
    } catch {
      return NaN;
    }
  };
  const ceilingAround = [await ceilingNow()];
  // single requests are cheap and their ratio is the noisiest row: twice the repetitions
  const short = await singleStream(o, t, prompts.short, plan.shortTokens, 2 * reps());
  ceilingAround.push(await ceilingNow());
  say("single stream, long prompt");
  const long = await singleStream(o, t, prompts.long, plan.longTokens, reps());

  const peak = { ours: { rssMiB: 0, peakMiB: 0 } as Memory, theirs: { rssMiB: 0, peakMiB: 0 } as Memory };
  const sample = (who: "ours" | "theirs", pid: number) => {
    const m = memoryOf(pid);
    peak[who] = { rssMiB: Math.max(peak[who].rssMiB, m.rssMiB), peakMiB: Math.max(peak[who].peakMiB, m.peakMiB) };
  };
  const conc = [];
  for (const c of plan.concurrency) {
    say(`concurrency ${c}${c === Math.max(...plan.concurrency) ? " (+ /health probe)" : ""}`);
    conc.push(await concurrencyRun(o, t, prompts.short, {
      concurrency: c, perClient: plan.perClient, nTokens: plan.concTokens, reps: reps(), probeHealth: c === Math.max(...plan.concurrency),
      afterOurs: () => sample("ours", o.pid), afterTheirs: () => sample("theirs", t.pid),
    }));
  }
  say(`concurrency ${plan.sampledConcurrency}, sampled`);
  const sampled = await concurrencyRun(o, t, prompts.short, {
    concurrency: plan.sampledConcurrency, perClient: plan.perClient, nTokens: plan.concTokens, reps: reps(),
    sampling: SAMPLED,
  });
  say("continuation");
  const cont = await continuation(o, t, prompts.cont, { firstTokens: plan.contFirstTokens, nTokens: plan.contTokens, reps: reps() });
  say("beam search");
  const beam = await beamSearch(o, prompts.short, { numBeams: plan.numBeams, nTokens: plan.beamTokens, reps: reps() });
  sample("ours", o.pid);
  sample("theirs", t.pid);
  results = { ceiling, ceilingAround, short, long, conc, sampled, cont, beam, memory: peak, engineAlone: null };
} catch (err) {
  console.error(`[bench] FAILED after ${elapsed()}: ${(err as Error).stack ?? err}`);
  if (ours) console.error(`[bench] our server's last output:\n${(ours as OurServer).log()}`);
  if (theirs) console.error(`[bench] llama-server's last output:\n${(theirs as BenchServer).log()}`);
  await stopAll();
  process.exit(1);
}
const oursLog = ours ? (ours as OurServer).log() : "";
const endStats = ours ? await (ours as OurServer).stats().catch(() => null) : null;
await stopAll();

// ---- profile: the engine alone, with both servers down (host overhead without HTTP or messages)
let engineAlone: EngineAlone | null = null;
try {
  say("profile: engine alone, in-process");
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, "engine-host.ts"), modelPath, String(plan.threads), String(plan.parallel), String(plan.ctx)], { stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(p.stderr.toString().trim().split("\n").slice(-3).join(" / "));
  engineAlone = JSON.parse(p.stdout.toString().trim().split("\n").pop()!) as EngineAlone;
} catch (err) {
  findings.push(`the in-process engine profile failed: ${(err as Error).message}`);
}
results.engineAlone = engineAlone;

// ---- report
const spec = PRESETS.bench;
const totalS = (performance.now() - started) / 1000;
const logLines = oursLog.split("\n");
const bad = logLines.filter((l) => /error|fail|fatal|panic|exception/i.test(l));
if (bad.length > 0) findings.push(`our server logged ${bad.length} error line(s), last: ${bad.slice(-3).join(" / ")}`);
const evictLines = logLines.filter((l) => /evicted/i.test(l)).length;
if (evictLines > 0) findings.push(`our server logged ${evictLines}+ "[engine] evicted cached sequence" lines (expected: every request uses a fresh request_id, so the cache slots fill up; /api/stats evictions at the end: ${endStats?.evictions ?? "?"})`);
if (plan.name === "full" && totalS > 600) findings.push(`the run took ${totalS.toFixed(0)} s, over the 10-minute budget`);
const notes = [...findings];
notes.push(`token counts checked: ${verified.oursRuns} of our runs matched /api/stats tokensGenerated, ${verified.theirsRequests} llama-server requests matched tokens_predicted${findings.some((f) => /expected \d+$/.test(f)) ? " (mismatches above)" : ""}.`);
if (ceiling) notes.push(`engine ceiling (\`${ceiling.command}\`), text-generation tokens/s: ${ceiling.rows.map((r) => `npl ${r.npl}: ${r.tgTps}`).join(", ")}; prompt t/s: ${ceiling.rows.map((r) => `npl ${r.npl}: ${r.ppTps}`).join(", ")}. The single-stream ceiling row uses the median of npl 1 at the start and right before / after the short single-stream runs: ${[ceiling.rows.find((r) => r.npl === 1)?.tgTps, ...results.ceilingAround].map((x) => fmt(x ?? NaN, 2)).join(" / ")} t/s.`);
notes.push(
  "decode tokens/s = (tokens − 1) / (total − TTFT) per request; TTFT = first non-empty body chunk (ours: text/plain, llama-server: SSE); time per output token likewise per request, percentiles over the requests of a run.",
  `every value is the median over ${plan.reps} run(s) (${2 * plan.reps} requests for the short single stream)${slowNoted ? ` (${MIN_REPS} for the later workloads, see above)` : ""}, alternating ours / llama-server per run; aggregate tokens/s = all output tokens of a run / its wall time.`,
  `both servers stay up; before each measured run the other server is left to go quiet (its process tree under 5 % of a core over 50 ms), because llama-server's thread pool keeps spinning for ~100+ ms after a request (ggml poll 50) and would take a core from ours: ${waits.count} waits, total ${fmt(waits.totalMs / 1000, 1)} s, longest ${fmt(waits.maxMs, 0)} ms${waits.timeouts ? `, ${waits.timeouts} gave up after 2 s` : ""}.`,
  "ours: /api/generate-one with fresh request_ids, do_sample false (or the sampled profile), max_new_tokens fixed (the bench model never emits EOS; counts checked against /api/stats tokensGenerated). llama-server: /completion, stream, cache_prompt false, ignore_eos, samplers [top_k] top_k 1 (or [top_k, top_p, temperature], min_p 0).",
);

const report = renderReport({
  title: `Benchmark: ours vs llama-server (${plan.name} run)`,
  facts: [
    ["Date", new Date().toISOString()],
    ["CPU", `${cpuModel()}, ${coreCount()} cores`],
    ["llama.cpp", llamaVersion(ROOT)],
    ["Model", `synthetic "bench" preset (llama.cpp describes it as "${String(modelFacts.description ?? "")}"), ${fmt(Number(modelFacts.nParams) / 1e6, 1)}M params, F16, ${fmt(Number(modelFacts.sizeBytes) / 2 ** 20, 0)} MiB, n_embd ${spec.nEmbd}, ${spec.nLayer} layers, ${spec.nHead} heads / ${spec.nHeadKv} KV heads, vocab ${String(modelFacts.nVocab ?? "?")} (llama SPM)`],
    ["Servers", `both on 127.0.0.1, THREADS ${plan.threads}, PARALLEL ${plan.parallel}, ${plan.ctx} tokens of context per sequence (llama-server: -c ${plan.ctx * plan.parallel} -np ${plan.parallel} --kv-unified; ours: every other setting at its default, KV cells ${String(modelFacts.kvCells ?? "?")} per /health)`],
    ["Prompts", `short ${prompts!.short.tokens}, long ${prompts!.long.tokens}, continuation ${prompts!.cont.tokens} tokens (llama-server /tokenize, without BOS)`],
    ["Run time", `${totalS.toFixed(0)} s`],
    ["Machine load", `CPUs ${fmt(busyBefore * 100, 0)} % busy in the second before the run; 1-minute load average ${fmt(loadBefore, 2)} at start, ${fmt(loadAverage(), 2)} at the end (includes the bench itself)`],
  ],
  rows: buildRows(plan, results),
  notes,
});
console.log(report);
const kept = sectionsOf(join(import.meta.dir, "results.md")); // e.g. bench/cluster.ts's
writeFileSync(join(import.meta.dir, "results.md"), kept ? `${report.trimEnd()}\n\n${kept}` : report);
say(`wrote bench/results.md (${totalS.toFixed(0)} s)`);

// ---- the same server at depth (bench/depth.ts: long generations, deep sessions, chat history): its own table
if (!process.argv.includes("--no-depth")) {
  say("at depth: bun bench/depth.ts (--no-depth skips it)");
  const depth = Bun.spawnSync([process.execPath, join(import.meta.dir, "depth.ts"), ...process.argv.slice(2).filter((a) => a === "--quick" || a.startsWith("--reps="))], { stdio: ["ignore", "inherit", "inherit"] });
  if (depth.exitCode !== 0) process.exit(depth.exitCode ?? 1);
}
