// `bun bench/depth.ts [--reps=3] [--model=smollm2] [--quick] [--ours-env=FLASH_ATTN=off,…]` (also the second half of `bun run bench`):
// the server as it is used at depth, against upstream llama-server at its defaults (flash attention
// auto), the same model, threads (2), slots (8) and context (4096 per slot). Rows: one 1024- and one
// 2048-token generation; 8 of 1024 at once; 8 sessions continued by 16 tokens at depth 600, 1800
// and 3600; chat turns after ~600 tokens of history, 1 and 8 conversations. Prints a table and
// writes it into its section of bench/results-depth.md (or -smollm2.md), keeping the rest.
import { join } from "node:path";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { chatAtDepth, concurrentLong, continuations, longGeneration, samples, type Samples, type Servers } from "./depth-workloads.ts";
import { startOurs, startTheirs } from "./servers.ts";
import { median } from "./stats.ts";
import { cpuModel, writeSection } from "./table.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = process.argv.includes("--quick");
const reps = Math.max(1, Number(arg("reps") ?? (quick ? 1 : 3)) | 0);
const real = arg("model") === "smollm2";
const model = real ? await ensureDefaultModel() : await ensureModel("bench");
const shape = { threads: 2, parallel: 8, ctx: 4096 };
const started = performance.now();
const say = (msg: string) => console.error(`[depth ${((performance.now() - started) / 1000).toFixed(0)} s] ${msg}`);

const servers: Servers = {
  theirs: await startTheirs(model, shape, ["--jinja"]),
  ours: await startOurs(model, shape, 300_000, Object.fromEntries((arg("ours-env") ?? "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]))),
};
const health = (await (await fetch(`${servers.ours.url}/health`)).json()) as { model: { attention: { flashAttn: number; source: string } } };
const attention = `flash attention ${["auto", "off", "on"][health.model.attention.flashAttn + 1]} (${health.model.attention.source})`;
say(`ours: ${attention}`);

type Row = { label: string; s: Samples; kind: "rate" | "time"; target?: number; digits: number };
const rows: Row[] = [];
const add = (label: string, s: Samples, kind: "rate" | "time", target?: number, digits = 1) => rows.push({ label, s, kind, target, digits });

try {
  const long = quick ? [256] : [1024, 2048];
  for (const n of long) {
    say(`one ${n}-token generation`);
    const r = { tps: samples(), ttft: samples() };
    await longGeneration(servers, n, reps, r);
    add(`one ${n}-token generation: decode tokens/s`, r.tps, "rate", n === 2048 ? 1.4 : undefined);
    add(`one ${n}-token generation: TTFT ms`, r.ttft, "time");
  }
  const manyN = quick ? 128 : 1024;
  say(`8 generations of ${manyN} at once`);
  const many = samples();
  await concurrentLong(servers, 8, manyN, reps, many);
  add(`8 generations of ${manyN} tokens at once: aggregate tokens/s`, many, "rate");

  for (const depth of quick ? [600] : [600, 1800, 3600]) {
    say(`8 sessions continued at depth ${depth}`);
    const r = { wallS: samples(), ttft: samples() };
    await continuations(servers, { sessions: 8, depth, n: 16, reps }, r);
    add(`8 sessions at depth ~${depth}, each continued by 16 tokens at once: wall s`, r.wallS, "time", depth === 1800 ? 1.5 : undefined, 2);
    add(`8 sessions at depth ~${depth}: TTFT ms (median)`, r.ttft, "time");
  }
  for (const clients of [1, 8]) {
    say(`chat turns after ~600 tokens of history, ${clients} conversation(s)`);
    const r = { turnMs: samples(), ttft: samples() };
    await chatAtDepth(servers, { clients, historyTokens: 600, turns: quick ? 1 : 3, n: 16, reps }, r);
    add(`chat turns after ~600 tokens of history, ${clients} conversation(s): turn latency ms (median)`, r.turnMs, "time", clients === 8 ? 1.5 : undefined);
    add(`chat turns after ~600 tokens of history, ${clients} conversation(s): TTFT ms (median)`, r.ttft, "time");
  }
} finally {
  await Promise.allSettled([servers.ours.stop(), servers.theirs.stop()]);
}

/** how much better ours is: a rate ours/theirs, a time theirs/ours (so > 1 is always ours ahead) */
const lead = (r: Row, o: number, t: number) => (r.kind === "rate" ? o / t : t / o);
const table = [
  `At depth: ours (${attention}${arg("ours-env") ? `, ${arg("ours-env")}` : ""}) vs upstream llama-server at its defaults (-fa auto, --kv-unified --jinja), ${real ? "SmolLM2-135M-Instruct Q4_1" : "the synthetic bench model (F16, ~125M)"}, 2 threads, 8 slots × 4096 tokens, ${reps} alternating repetition(s), medians; ${cpuModel()}; ${new Date().toISOString()}`,
  "",
  "| workload | ours | llama-server | ours ahead by | each repetition | target |",
  "|---|---|---|---|---|---|",
  ...rows.map((r) => {
    const o = median(r.s.ours), t = median(r.s.theirs);
    const each = r.s.ours.map((v, i) => lead(r, v, r.s.theirs[i]!).toFixed(2)).join(", ");
    const target = r.target === undefined ? "" : `≥ ${r.target}× ${lead(r, o, t) >= r.target ? "(met)" : "(missed)"}`;
    return `| ${r.label} | ${o.toFixed(r.digits)} | ${t.toFixed(r.digits)} | ${lead(r, o, t).toFixed(2)}× | ${each} | ${target} |`;
  }),
  "",
  "\"ours ahead by\": ours / llama-server for tokens/s, llama-server / ours for times.",
].join("\n");
console.log(table);
const file = join(import.meta.dir, real ? "results-depth-smollm2.md" : "results-depth.md");
const oursEnv = arg("ours-env");
const section = `depth${quick ? "-quick" : ""}${oursEnv ? `-${oursEnv.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase()}` : ""}`;
writeSection(file, section, `Command: \`bun bench/depth.ts${real ? " --model=smollm2" : ""}${quick ? " --quick" : ""}${oursEnv ? ` --ours-env=${oursEnv}` : ""} --reps=${reps}\` (${((performance.now() - started) / 1000).toFixed(0)} s)\n\n${table}`);
say(`wrote ${file}`);
process.exit(0);
