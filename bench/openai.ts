// `bun bench/openai.ts [--reps=5] [--model=smollm2]`: /v1/chat/completions on our server and on
// llama-server, the same model (the synthetic bench preset, ~125M F16, no chat template: both use
// ChatML; or the default SmolLM2-135M-Instruct Q4_1 with its own template), threads, slots and context, both up
// at once and measured alternately (which goes first alternates by repetition). Rows: one stream;
// 8 concurrent clients; 8 concurrent clients sharing a ~500-token system prompt that one earlier
// request brought in (a new prompt each repetition, so no llama-server slot holds it from the last
// one); and the same with one system prompt for the whole run, which every llama-server slot holds
// after the first repetition (llama-server with cache_prompt throughout). Prints a table and writes
// it into its section of bench/results-openai.md (-smollm2.md for the real model), keeping the rest.
import { join } from "node:path";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { closedLoop, postSse, type Timing } from "./client.ts";
import { chatAtDepth, samples } from "./depth-workloads.ts";
import { untilQuiet } from "./quiet.ts";
import { startOurs, startTheirs, type BenchServer } from "./servers.ts";
import { writeSection } from "./table.ts";
import { median } from "./stats.ts";

const reps = Math.max(1, Number(process.argv.find((a) => a.startsWith("--reps="))?.slice(7) ?? 5) | 0);
const real = process.argv.includes("--model=smollm2");
const model = real ? await ensureDefaultModel() : await ensureModel("bench");
const shape = { threads: 2, parallel: 8, ctx: 2048 };
const servers: Record<"ours" | "theirs", BenchServer> = {
  theirs: await startTheirs(model, shape, ["--jinja"]), // the GGUF's own chat template, as ours renders it
  ours: await startOurs(model, shape, 180_000, { SESSION_STORE: "off" }),
};

const SYSTEM = "You are a careful assistant for a library. Answer in one short sentence, politely, citing the catalogue when you can. ".repeat(21);
let n = 0;

/** one streamed chat completion; tokens from the usage chunk */
async function chat(url: string, messages: { role: string; content: string }[], maxTokens: number, cachePrompt: boolean): Promise<Timing> {
  const body: Record<string, unknown> = { model: "bench", messages, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } };
  if (cachePrompt) body.cache_prompt = true; // llama-server's field (ours reuses prefixes by itself)
  const t0 = performance.now();
  let ttftMs = NaN, tokens = 0, chunks = 0, text = "";
  for await (const data of postSse<{ choices?: { delta?: { content?: string } }[]; usage?: { completion_tokens: number } | null }>(`${url}/v1/chat/completions`, body)) {
    const content = data.choices?.[0]?.delta?.content;
    if (content) {
      if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
      text += content;
      chunks++;
    }
    if (data.usage) tokens = data.usage.completion_tokens;
  }
  return { ttftMs, totalMs: performance.now() - t0, tokens: tokens || chunks, gapsMs: [], text };
}

const user = (q: string) => [{ role: "user", content: q }];
const shared = (system: string, q: string) => [{ role: "system", content: system }, { role: "user", content: q }];
const aggregate = (r: { results: Timing[]; wallMs: number }) => r.results.reduce((s, t) => s + t.tokens, 0) / (r.wallMs / 1000);

type Row = { single: number[]; singleTtft: number[]; c8: number[]; sharedTps: number[]; sharedTtft: number[]; repeatTps: number[]; repeatTtft: number[]; deep1: number[]; deep8: number[] };
const empty = (): Row => ({ single: [], singleTtft: [], c8: [], sharedTps: [], sharedTtft: [], repeatTps: [], repeatTtft: [], deep1: [], deep8: [] });
const res: Record<"ours" | "theirs", Row> = { ours: empty(), theirs: empty() };

/** 8 clients × 2 requests under `system`, after one warm-up request brought it in */
async function sharedPrompt(k: "ours" | "theirs", system: string, tps: number[], ttft: number[]): Promise<void> {
  const s = servers[k], cache = k === "theirs";
  await chat(s.url, shared(system, "Warm-up: hello."), 4, cache);
  const r = await closedLoop(8, 2, () => chat(s.url, shared(system, `Question ${n++}: where are the atlases?`), 32, cache));
  tps.push(aggregate(r));
  ttft.push(median(r.results.map((t) => t.ttftMs)));
}
try {
  for (let rep = 0; rep < reps; rep++) {
    const order = [["theirs", "ours"], ["ours", "theirs"]] as const;
    for (const [k, other] of rep % 2 === 0 ? order : [order[1], order[0]]) {
      const s = servers[k];
      const cache = k === "theirs";
      await untilQuiet(servers[other].pid);
      const singles: Timing[] = [];
      for (let i = 0; i < 3; i++) singles.push(await chat(s.url, user(`Tell me about topic ${n++}.`), 64, cache));
      res[k].single.push(median(singles.map((t) => (t.tokens - 1) / ((t.totalMs - t.ttftMs) / 1000))));
      res[k].singleTtft.push(median(singles.map((t) => t.ttftMs)));
      await untilQuiet(servers[other].pid);
      res[k].c8.push(aggregate(await closedLoop(8, 2, () => chat(s.url, user(`Question ${n++}: what is a library for?`), 32, cache))));
      await untilQuiet(servers[other].pid);
      // its own first words: nothing of it is cached from an earlier repetition, on either server
      await sharedPrompt(k, `Catalogue edition ${rep + 1}. ${SYSTEM}`, res[k].sharedTps, res[k].sharedTtft);
      await untilQuiet(servers[other].pid);
      await sharedPrompt(k, SYSTEM, res[k].repeatTps, res[k].repeatTtft);
    }
    console.error(`[openai] rep ${rep + 1}/${reps} done`);
  }
  // conversations at depth: a new ~20-token turn after ~600 tokens of history (bench/depth-workloads.ts)
  for (const [clients, key] of [[1, "deep1"], [8, "deep8"]] as const) {
    const r = { turnMs: samples(), ttft: samples() };
    await chatAtDepth(servers, { clients, historyTokens: 600, turns: 3, n: 16, reps }, r);
    res.ours[key].push(...r.turnMs.ours);
    res.theirs[key].push(...r.turnMs.theirs);
  }
} finally {
  await Promise.allSettled([servers.ours.stop(), servers.theirs.stop()]);
}

const rows: [string, keyof Row, string][] = [
  ["single stream: decode tokens/s", "single", "≥ 1.0×"],
  ["single stream: TTFT ms", "singleTtft", ""],
  ["concurrency 8: aggregate tokens/s", "c8", "≥ 1.0×"],
  ["shared ~500-token system prompt new to the server (one earlier request), 8 clients: aggregate tokens/s", "sharedTps", "≥ 1.5×"],
  ["shared ~500-token system prompt new to the server (one earlier request), 8 clients: TTFT ms (median)", "sharedTtft", ""],
  ["the same system prompt all run long (every llama-server slot holds it), 8 clients: aggregate tokens/s", "repeatTps", ""],
  ["the same system prompt all run long (every llama-server slot holds it), 8 clients: TTFT ms (median)", "repeatTtft", ""],
  ["chat turns after ~600 tokens of history, 1 conversation: turn latency ms (median; lower is better)", "deep1", ""],
  ["chat turns after ~600 tokens of history, 8 conversations: turn latency ms (median; lower is better)", "deep8", "≤ 1/1.5×"],
];
const table = [
  `/v1/chat/completions, ours vs llama-server (--kv-unified --jinja, cache_prompt): ${real ? "SmolLM2-135M-Instruct Q4_1 (tokens counted from usage: it may stop early)" : "bench model"}, 2 threads, 8 slots × 2048 tokens, ${reps} alternating repetitions, medians, ${new Date().toISOString()}`,
  "",
  "| workload | ours | llama-server | ours / llama-server | each repetition's ratio | target |",
  "|---|---|---|---|---|---|",
  ...rows.map(([label, key, target]) => {
    const a = median(res.ours[key]), b = median(res.theirs[key]);
    const each = res.ours[key].map((v, i) => (v / res.theirs[key][i]!).toFixed(2)).join(", "); // the machine's noise, in plain sight
    return `| ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}× | ${each} | ${target} |`;
  }),
].join("\n");
console.log(table);
writeSection(join(import.meta.dir, real ? "results-openai-smollm2.md" : "results-openai.md"), "openai", `Command: \`bun bench/openai.ts${real ? " --model=smollm2" : ""} --reps=${reps}\`\n\n${table}`);
process.exit(0);
