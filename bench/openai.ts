// `bun bench/openai.ts [--reps=3] [--model=smollm2]`: /v1/chat/completions on our server and on
// llama-server, the same model (the synthetic bench preset, ~125M F16, no chat template: both use
// ChatML; or the default SmolLM2-135M-Instruct Q4_1 with its own template), threads, slots and context, both up
// at once and measured alternately. Rows: one stream; 8 concurrent clients; 8 concurrent clients
// sharing a ~500-token system prompt already cached by an earlier request (llama-server with
// cache_prompt). Prints a table and writes bench/results-openai.md (-smollm2.md for the real model).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { closedLoop, type Timing } from "./client.ts";
import { untilQuiet } from "./quiet.ts";
import { startOurs, startTheirs, type BenchServer } from "./servers.ts";
import { median } from "./stats.ts";

const reps = Math.max(1, Number(process.argv.find((a) => a.startsWith("--reps="))?.slice(7) ?? 3) | 0);
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
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", connection: "close" }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  let ttftMs = NaN, tokens = 0, chunks = 0, text = "", buffer = "";
  const decoder = new TextDecoder();
  for await (const part of res.body!) {
    buffer += decoder.decode(part, { stream: true });
    const events = buffer.split("\n\n");
    buffer = events.pop()!;
    for (const ev of events) {
      if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
      const data = JSON.parse(ev.slice(6)) as { choices?: { delta?: { content?: string } }[]; usage?: { completion_tokens: number } | null };
      const content = data.choices?.[0]?.delta?.content;
      if (content) {
        if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
        text += content;
        chunks++;
      }
      if (data.usage) tokens = data.usage.completion_tokens;
    }
  }
  return { ttftMs, totalMs: performance.now() - t0, tokens: tokens || chunks, gapsMs: [], text };
}

const user = (q: string) => [{ role: "user", content: q }];
const shared = (q: string) => [{ role: "system", content: SYSTEM }, { role: "user", content: q }];
const aggregate = (r: { results: Timing[]; wallMs: number }) => r.results.reduce((s, t) => s + t.tokens, 0) / (r.wallMs / 1000);

type Row = { single: number[]; singleTtft: number[]; c8: number[]; sharedTps: number[]; sharedTtft: number[] };
const res: Record<"ours" | "theirs", Row> = {
  ours: { single: [], singleTtft: [], c8: [], sharedTps: [], sharedTtft: [] },
  theirs: { single: [], singleTtft: [], c8: [], sharedTps: [], sharedTtft: [] },
};
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const [k, other] of [["theirs", "ours"], ["ours", "theirs"]] as const) {
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
      await chat(s.url, shared("Warm-up: hello."), 4, cache); // the system prompt is cached from earlier traffic
      const r = await closedLoop(8, 2, () => chat(s.url, shared(`Question ${n++}: where are the atlases?`), 32, cache));
      res[k].sharedTps.push(aggregate(r));
      res[k].sharedTtft.push(median(r.results.map((t) => t.ttftMs)));
    }
    console.error(`[openai] rep ${rep + 1}/${reps} done`);
  }
} finally {
  await Promise.allSettled([servers.ours.stop(), servers.theirs.stop()]);
}

const rows: [string, keyof Row, string][] = [
  ["single stream: decode tokens/s", "single", "≥ 1.0×"],
  ["single stream: TTFT ms", "singleTtft", ""],
  ["concurrency 8: aggregate tokens/s", "c8", "≥ 1.0×"],
  ["shared ~500-token system prompt, 8 clients: aggregate tokens/s", "sharedTps", "≥ 1.5×"],
  ["shared ~500-token system prompt, 8 clients: TTFT ms (median)", "sharedTtft", ""],
];
const table = [
  `/v1/chat/completions, ours vs llama-server (--kv-unified --jinja, cache_prompt): ${real ? "SmolLM2-135M-Instruct Q4_1 (tokens counted from usage: it may stop early)" : "bench model"}, 2 threads, 8 slots × 2048 tokens, ${reps} alternating repetitions, medians, ${new Date().toISOString()}`,
  "",
  "| workload | ours | llama-server | ours / llama-server | target |",
  "|---|---|---|---|---|",
  ...rows.map(([label, key, target]) => {
    const a = median(res.ours[key]), b = median(res.theirs[key]);
    return `| ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}× | ${target} |`;
  }),
].join("\n");
console.log(table);
writeFileSync(join(import.meta.dir, real ? "results-openai-smollm2.md" : "results-openai.md"), table + "\n");
process.exit(0);
