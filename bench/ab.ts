// `bun bench/ab.ts --a "ENV=1 ..." --b "ENV=2 ..." [--reps=6]`: paired A/B of two configurations of
// our server (settings, or LLM_LIB_PATH pointing at another build of the shim), both up at once and
// measured alternately, each after the other went quiet. On a noisy machine this separates a real
// change from drift far better than two `bun run bench` runs minutes apart.
import { ensureModel } from "../src/gguf/models.ts";
import { closedLoop, decodeTps, oursGenerate } from "./client.ts";
import { untilQuiet } from "./quiet.ts";
import { startOurs, type OurServer } from "./servers.ts";
import { median } from "./stats.ts";
import { addDelta, overhead, summarize, ZERO_DELTA } from "./workloads.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
};
const parseEnv = (spec: string) => Object.fromEntries(spec.split(/\s+/).filter(Boolean).map((kv) => {
  const eq = kv.indexOf("=");
  if (eq <= 0) throw new Error(`expected NAME=value, got "${kv}"`);
  return [kv.slice(0, eq), kv.slice(eq + 1)];
}));
const configs = { a: parseEnv(arg("a", "")), b: parseEnv(arg("b", "")) };
const reps = Math.max(1, Number(arg("reps", "6")) | 0);
const shape = { threads: Number(arg("threads", "2")), parallel: 16, ctx: 2048 };

const model = await ensureModel("bench");
const servers: Record<"a" | "b", OurServer> = {} as Record<"a" | "b", OurServer>;
for (const k of ["a", "b"] as const) {
  const saved = { ...process.env };
  Object.assign(process.env, configs[k]); // startOurs passes process.env to the server
  servers[k] = await startOurs(model, shape);
  process.env = saved;
}
const prompt = (i: number) => `Request ${i}: the quick brown fox jumps over the lazy dog and then runs into the forest where it meets`;
type Metrics = { single: number[]; c16: number[]; host16: number[] };
const res: Record<"a" | "b", Metrics> = { a: { single: [], c16: [], host16: [] }, b: { single: [], c16: [], host16: [] } };
let n = 0;
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const [k, other] of [["a", "b"], ["b", "a"]] as const) {
      const s = servers[k];
      await untilQuiet(servers[other].pid);
      const singles = [];
      for (let i = 0; i < 3; i++) singles.push(decodeTps(await oursGenerate(s.url, { requestId: `ab-${n++}`, prompt: prompt(n), maxNewTokens: 64 })));
      res[k].single.push(median(singles));
      await untilQuiet(servers[other].pid);
      const before = await s.stats();
      const r = await closedLoop(16, 2, () => oursGenerate(s.url, { requestId: `ab-${n++}`, prompt: prompt(n), maxNewTokens: 32 }));
      const after = await s.stats();
      res[k].c16.push(summarize(r).aggTps);
      res[k].host16.push(overhead(addDelta(ZERO_DELTA, before, after)).perSeqUs);
    }
    console.error(`[ab] rep ${rep + 1}/${reps} done`);
  }
} finally {
  await Promise.allSettled([servers.a.stop(), servers.b.stop()]);
}
const rows: [string, keyof Metrics][] = [["single stream decode tokens/s", "single"], ["concurrency 16 aggregate tokens/s", "c16"], ["concurrency 16 host µs/sequence/step", "host16"]];
console.log(`A: ${arg("a", "(defaults)") || "(defaults)"}\nB: ${arg("b", "(defaults)") || "(defaults)"}\n${reps} alternating repetitions, medians\n`);
console.log("| metric | A | B | B / A |\n|---|---|---|---|");
for (const [label, key] of rows) {
  const a = median(res.a[key]), b = median(res.b[key]);
  console.log(`| ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(3)} |`);
}
process.exit(0);
