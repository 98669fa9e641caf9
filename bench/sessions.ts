// `bun run bench:sessions [--quick] [--reps=N]`: continuation TTFT of a ~1000-token session after it
// was pushed out of the KV cache, restored from each of our tiers (RAM, directory, Redis, after a
// restart) or decoded again, beside llama-server's host-RAM prompt cache (--cache-ram) on the same
// model, threads and slots. Prints a table and writes bench/results-sessions.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureModel } from "../src/gguf/models.ts";
import { llamaTool } from "../test/helpers/llama-server.ts";
import { hasRedis, startRedis, type RedisServer } from "../test/helpers/redis.ts";
import { oursGenerate, theirsGenerate } from "./client.ts";
import { llamaServerCounter, PromptSet } from "./prompts.ts";
import { memoryOf, ROOT, startOurs, startTheirs, type OurServer } from "./servers.ts";
import { median } from "./stats.ts";
import { coreCount, cpuModel, fmt, fmtRatio, llamaVersion, renderTable, verdict, type Row } from "./table.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const reps = Number(args.find((a) => a.startsWith("--reps="))?.slice(7) ?? (quick ? 2 : 5));
const shape = { threads: coreCount(), parallel: 2, ctx: 2048 };
const FIRST = 16, MORE = 16;
const say = (m: string) => console.error(`[bench:sessions] ${m}`);

llamaTool("llama-server", { upstream: true });
const modelPath = await ensureModel("bench");
const tmp = mkdtempSync(join(tmpdir(), "bench-sessions-"));
let redis: RedisServer | null = null;

// llama-server measures the prompts' token counts
const counter = await startTheirs(modelPath, shape);
const long = await PromptSet.create("session", 1000, llamaServerCounter(counter.url));
const short = await PromptSet.create("evict", 100, llamaServerCounter(counter.url));
await counter.stop();
say(`prompts: ${long.tokens} tokens (sessions), ${short.tokens} (the two that push a session out of its slot)`);

// llama-server is measured before and after our runs (the VM's speed drifts within a run): its
// rows are the medians over both halves
const theirsRes = { cold: [] as number[], kv: [] as number[], ram: [] as number[] };
let theirsRss = 0;
async function runTheirs(half: number): Promise<void> {
  const theirs = await startTheirs(modelPath, shape, ["--cache-ram", "8192"]);
  const n = Math.ceil(reps / 2);
  for (let rep = half * n; rep < (half + 1) * n; rep++) {
    const p = long.get(rep);
    const a = await theirsGenerate(theirs.url, { prompt: p, nPredict: FIRST, cachePrompt: true });
    const b = await theirsGenerate(theirs.url, { prompt: p + a.text, nPredict: MORE, cachePrompt: true });
    for (let k = 0; k < 2; k++) await theirsGenerate(theirs.url, { prompt: short.get(rep * 2 + k), nPredict: 4, cachePrompt: true });
    const c = await theirsGenerate(theirs.url, { prompt: p + a.text + b.text, nPredict: MORE, cachePrompt: true });
    theirsRes.cold.push(a.ttftMs), theirsRes.kv.push(b.ttftMs), theirsRes.ram.push(c.ttftMs);
  }
  theirsRss = Math.max(theirsRss, memoryOf(theirs.pid).rssMiB);
  await theirs.stop();
  say(`llama-server (half ${half + 1}): from --cache-ram ${theirsRes.ram.slice(-n).map((x) => fmt(x)).join(", ")} ms`);
}
await runTheirs(0);

interface Tier {
  name: string;
  env: Record<string, string>;
  /** the session must have reached this tier before it is continued */
  wait?: "ram" | "store";
  expect: string;
  restart?: boolean;
}
const tiers: Tier[] = [
  { name: "RAM", env: {}, wait: "ram", expect: "restored" },
  { name: "directory", env: { SESSION_RAM_BYTES: "0" }, wait: "store", expect: "restored" },
  { name: "Redis", env: { SESSION_RAM_BYTES: "0", SESSION_STORE: "redis" }, wait: "store", expect: "restored" },
  { name: "after a restart (SIGTERM, directory)", env: {}, expect: "restored", restart: true },
  { name: "recompute (no tiers)", env: { SESSION_RAM_BYTES: "0", SESSION_STORE: "off" }, expect: "recomputed" },
];

const ours = new Map<string, { cold: number[]; kv: number[]; tier: number[]; bytesPerToken: number[]; sources: string[] }>();
let rssRow: { rss: number; base: number; budget: number } | null = null;
for (const tier of tiers) {
  if (tier.env.SESSION_STORE === "redis") {
    if (!hasRedis()) { say("redis-server not installed: Redis row skipped"); continue; }
    redis = await startRedis();
    tier.env.SESSION_STORE = redis.url;
  }
  const env = { CACHE_SEQUENCES: "2", LOG_EVICTIONS: "false", SESSION_DIR: join(tmp, tier.name.replace(/\W+/g, "-")), ...tier.env };
  let server: OurServer = await startOurs(modelPath, shape, 180_000, env);
  const r = { cold: [] as number[], kv: [] as number[], tier: [] as number[], bytesPerToken: [] as number[], sources: [] as string[] };
  const ids = Array.from({ length: reps }, (_, rep) => `bench-${tier.name.length}-${rep}-${Date.now()}`);
  const gen = (s: OurServer, id: string, prompt: string, n: number) => oursGenerate(s.url, { requestId: id, prompt, maxNewTokens: n });
  for (let rep = 0; rep < reps; rep++) {
    r.cold.push((await gen(server, ids[rep]!, long.get(rep), FIRST)).ttftMs);
    r.kv.push((await gen(server, ids[rep]!, "", MORE)).ttftMs);
    if (tier.restart) continue;
    for (let k = 0; k < 2; k++) await gen(server, `${ids[rep]}-evict-${k}`, short.get(rep * 2 + k), 4);
    await waitTier(server, ids[rep]!, tier.wait);
    r.bytesPerToken.push(await bytesPerToken(server, ids[rep]!));
    const t0 = performance.now();
    const res = await fetch(`${server.url}/api/generate-one`, { method: "POST", body: JSON.stringify({ request_id: ids[rep], prompt: "", generation_config: { do_sample: false, max_new_tokens: MORE } }) });
    r.sources.push(res.headers.get("x-session") ?? "?");
    const reader = res.body!.getReader();
    await reader.read();
    r.tier.push(performance.now() - t0);
    while (!(await reader.read()).done);
  }
  if (tier.restart) {
    await server.stop(); // SIGTERM: drain, then every session's KV state to SESSION_DIR
    server = await startOurs(modelPath, shape, 180_000, env);
    await gen(server, "warm-up", short.get(99), 2); // thread pool and caches, not the session, on the clock
    for (const id of ids) {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/api/generate-one`, { method: "POST", body: JSON.stringify({ request_id: id, prompt: "", generation_config: { do_sample: false, max_new_tokens: MORE } }) });
      r.sources.push(res.headers.get("x-session") ?? "?");
      const reader = res.body!.getReader();
      await reader.read();
      r.tier.push(performance.now() - t0);
      while (!(await reader.read()).done);
    }
  }
  if (tier.name === "RAM") rssRow = await ramBound(server, env);
  await server.stop();
  await redis?.stop();
  redis = null;
  ours.set(tier.name, r);
  say(`${tier.name}: cold ${fmt(median(r.cold))} ms, in KV ${fmt(median(r.kv))} ms, continuation ${fmt(median(r.tier))} ms (${[...new Set(r.sources)].join("/")}; each: ${r.tier.map((x) => fmt(x)).join(", ")})`);
}
rmSync(tmp, { recursive: true, force: true });
await runTheirs(1);

async function waitTier(s: OurServer, id: string, tier?: string): Promise<void> {
  for (let i = 0; tier && i < 500; i++) {
    const info = (await (await fetch(`${s.url}/api/cache/${id}`)).json()) as { tier: string };
    if (info.tier === tier) return;
    await Bun.sleep(10);
  }
}

async function bytesPerToken(s: OurServer, id: string): Promise<number> {
  const info = (await (await fetch(`${s.url}/api/cache/${id}`)).json()) as { state_bytes: number; prompt_tokens: number; generated_tokens: number };
  return info.state_bytes > 0 ? info.state_bytes / (info.prompt_tokens + info.generated_tokens) : NaN;
}

/** RSS with SESSION_RAM_BYTES = 64 MiB and sessions worth several times that. */
async function ramBound(s: OurServer, env: Record<string, string>): Promise<{ rss: number; base: number; budget: number }> {
  await s.stop();
  const budget = 64;
  const server = await startOurs(modelPath, shape, 180_000, { ...env, SESSION_RAM_BYTES: String(budget * 2 ** 20) });
  await oursGenerate(server.url, { requestId: "rss-warm", prompt: short.get(0), maxNewTokens: 2 });
  const base = memoryOf(server.pid).rssMiB;
  for (let i = 0; i < (quick ? 6 : 12); i++) await oursGenerate(server.url, { requestId: `rss-${i}`, prompt: long.get(50 + i), maxNewTokens: 2 });
  const rss = memoryOf(server.pid).rssMiB;
  await server.stop();
  return { rss, base, budget };
}

// ---- the table
const row = (workload: string, metric: string, o: number, t: number | undefined, target = "", ok: boolean | null = null): Row =>
  ({ workload, metric, ours: fmt(o), theirs: t === undefined ? "–" : fmt(t), ratio: t === undefined ? "" : fmtRatio(o / t), target, status: target ? verdict(ok) : "" });
const rows: Row[] = [];
const ram = ours.get("RAM");
const kvTtft = median(ram?.kv ?? []);
const theirsRam = median(theirsRes.ram);
rows.push(row(`cold, ${long.tokens}-token prompt`, "TTFT ms (median)", median(ram?.cold ?? []), median(theirsRes.cold)));
rows.push(row("continuation, session in the KV cache", "TTFT ms", kvTtft, median(theirsRes.kv)));
for (const [name, r] of ours) {
  const t = median(r.tier);
  const restart = name.startsWith("after");
  const target = name === "RAM" || name === "directory" ? "≤ 2× in-KV and ≤ 1.0× llama-server --cache-ram" : restart ? "≤ 5 % of cold" : "";
  const ok = restart ? t <= 0.05 * median(r.cold) : target ? t <= 2 * kvTtft && t <= theirsRam : null;
  rows.push(row(`continuation after eviction: ${name}`, `TTFT ms (x-session ${[...new Set(r.sources)].join("/")})`, t, restart || name.startsWith("recompute") ? undefined : theirsRam, target, ok));
  if (restart) rows.push(row("  after a restart, of cold", "TTFT / cold TTFT, %", (100 * t) / median(r.cold), undefined));
}
const bpt = median(ram?.bytesPerToken.filter(Number.isFinite) ?? []);
rows.push(row("KV state blob", "bytes per token", bpt, undefined));
if (rssRow) {
  // the KV cache's pages are touched as sessions fill it (2 slots × CTX cells): part of the bound
  const kvMiB = Number.isFinite(bpt) ? (2 * shape.ctx * bpt) / 2 ** 20 : 0;
  // and the one blob on its way from RAM to the store (held until its write is durable)
  const blobMiB = Number.isFinite(bpt) ? (bpt * long.tokens) / 2 ** 20 : 0;
  const bound = rssRow.base + rssRow.budget + kvMiB + blobMiB;
  rows.push(row(`RSS with SESSION_RAM_BYTES ${rssRow.budget} MiB, ${quick ? 6 : 12} sessions of ~${long.tokens} tokens`, `MiB (after load: ${fmt(rssRow.base)}, KV cache ${fmt(kvMiB)}, one blob ${fmt(blobMiB)})`,
    rssRow.rss, undefined, `≤ after-load + SESSION_RAM_BYTES + KV cache + one blob in flight = ${fmt(bound)}`, rssRow.rss <= bound));
}
rows.push(row("resident memory, llama-server after the runs", "VmRSS MiB", theirsRss, undefined));

const report = [
  `# Session tiers: continuation TTFT after eviction (${new Date().toISOString().slice(0, 16)} UTC)`, "",
  `- machine: ${cpuModel()}, ${coreCount()} cores; llama.cpp ${llamaVersion(ROOT)}`,
  `- model: synthetic bench preset (~125M params, F16); THREADS ${shape.threads}, 2 slots (PARALLEL 2, CACHE_SEQUENCES 2 / llama-server -np 2 --cache-ram 8192), ${shape.ctx} tokens per slot`,
  `- each rep: a ${long.tokens}-token session generates ${FIRST} tokens, continues ${MORE} (in KV), two ${short.tokens}-token sessions push it out of its slot, then it continues ${MORE} more; ${reps} reps, medians`,
  "", renderTable(rows), "",
].join("\n");
console.log(report);
if (quick) mkdirSync(join(ROOT, "bench/tmp"), { recursive: true });
writeFileSync(join(ROOT, quick ? "bench/tmp/results-sessions.md" : "bench/results-sessions.md"), report); // --quick: a smoke run, not committed
