// `bun bench/structured.ts [--reps=3] [--model=smollm2]`: constrained decoding, ours against
// upstream llama-server with the same JSON Schema (llama-server's json_schema field), on /v1/completions
// (same model, 2 threads, 8 slots, temperature 1, 96 tokens at most). Rows: tokens/s at concurrency
// 1 (3 requests) and 8 (8 clients in a closed loop, 4 requests each: with 2 each, the run's tail, where
// fewer than 8 are left, weighed on constrained answers, which end at different lengths), constrained
// and not (each server against its own unconstrained run); TTFT for a schema
// the server has not seen (a new property name each time) and for one it has. Prints a table and
// writes it into its section of bench/results-structured.md (or -smollm2.md).
import { join } from "node:path";
import Ajv from "ajv";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { closedLoop, postSse, type Timing } from "./client.ts";
import { untilQuiet } from "./quiet.ts";
import { startOurs, startTheirs, type BenchServer, type OurServer } from "./servers.ts";
import { median } from "./stats.ts";
import { cpuModel, writeSection } from "./table.ts";

const reps = Math.max(1, Number(process.argv.find((a) => a.startsWith("--reps="))?.slice(7) ?? 3) | 0);
const real = process.argv.includes("--model=smollm2");
const model = real ? await ensureDefaultModel() : await ensureModel("bench");
const shape = { threads: 2, parallel: 8, ctx: 2048 };
const servers: { ours: OurServer; theirs: BenchServer } = {
  theirs: await startTheirs(model, shape, ["--jinja"]),
  ours: await startOurs(model, shape, 300_000, { SESSION_STORE: "off" }),
};

/** a nested schema with $defs, enums, arrays and numbers (`extra`: a property that makes it new to the server) */
const schema = (extra = "note") => ({
  type: "object",
  properties: {
    name: { type: "string", maxLength: 24 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    address: { $ref: "#/$defs/address" },
    tags: { type: "array", items: { enum: ["red", "green", "blue"] }, minItems: 1, maxItems: 4 },
    [extra]: { type: "string", maxLength: 16 },
  },
  required: ["name", "age", "address", "tags", extra],
  additionalProperties: false,
  $defs: { address: { type: "object", properties: { city: { type: "string", maxLength: 20 }, zip: { type: "integer" } }, required: ["city", "zip"], additionalProperties: false } },
});
const ajv = new Ajv();
let n = 0;
const checked = { valid: 0, stopped: 0, invalid: [] as string[] };

async function chat(url: string, s: object | null, maxTokens = 96): Promise<Timing> {
  // /v1/completions with llama-server's json_schema field on both: llama-server's chat route answers any
  // response_format on the bench model (no template of its own) with "Failed to initialize samplers"
  const body: Record<string, unknown> = {
    model: "m", prompt: `Person ${n++} as JSON:`, max_tokens: maxTokens, temperature: 1, seed: n,
    stream: true, stream_options: { include_usage: true },
  };
  if (s) body.json_schema = s;
  const t0 = performance.now();
  let ttftMs = NaN, tokens = 0, chunks = 0, text = "", finish = "";
  for await (const data of postSse<{ choices?: { text?: string; finish_reason?: string | null }[]; usage?: { completion_tokens: number } | null }>(`${url}/v1/completions`, body)) {
    const c = data.choices?.[0];
    if (c?.text) {
      if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
      text += c.text;
      chunks++;
    }
    if (c?.finish_reason) finish = c.finish_reason;
    if (data.usage) tokens = data.usage.completion_tokens;
  }
  if (s && finish === "stop" && url === servers.ours.url) {
    checked.stopped++;
    let why: string;
    try {
      why = ajv.validate(s, JSON.parse(text)) ? "" : ajv.errorsText();
    } catch (err) {
      why = `not JSON: ${(err as Error).message}`;
    }
    if (why) checked.invalid.push(`${JSON.stringify(text)}: ${why}`);
    else checked.valid++;
  }
  return { ttftMs, totalMs: performance.now() - t0, tokens: tokens || chunks, gapsMs: [], text };
}

type Key = "c1" | "c8" | "c1plain" | "c8plain" | "ttftNew" | "ttftCached";
/** ours at concurrency 8: tokens generated per second of engine step time (schedule + decode + masks + sampling), from /api/stats */
const engineRate: Record<"c8" | "c8plain", number[]> = { c8: [], c8plain: [] };
const res: Record<"ours" | "theirs", Record<Key, number[]>> = {
  ours: { c1: [], c8: [], c1plain: [], c8plain: [], ttftNew: [], ttftCached: [] },
  theirs: { c1: [], c8: [], c1plain: [], c8plain: [], ttftNew: [], ttftCached: [] },
};
const tps = (r: { results: Timing[]; wallMs: number }) => r.results.reduce((a, t) => a + t.tokens, 0) / (r.wallMs / 1000);
const fixed = schema();
try {
  await chat(servers.ours.url, fixed, 4); // both compile the fixed schema once before the runs
  await chat(servers.theirs.url, fixed, 4);
  for (let rep = 0; rep < reps; rep++) {
    for (const side of (rep % 2 ? ["theirs", "ours"] : ["ours", "theirs"]) as ("ours" | "theirs")[]) {
      const url = servers[side].url, other = servers[side === "ours" ? "theirs" : "ours"].pid;
      for (const [key, conc, s] of [["c1", 1, fixed], ["c1plain", 1, null], ["c8", 8, fixed], ["c8plain", 8, null]] as const) {
        await untilQuiet(other);
        const before = side === "ours" ? await servers.ours.stats() : null;
        res[side][key].push(tps(await closedLoop(conc, conc === 1 ? 3 : 4, () => chat(url, s))));
        if (before && (key === "c8" || key === "c8plain")) {
          const after = await servers.ours.stats();
          engineRate[key].push((after.tokensGenerated - before.tokensGenerated) / ((after.stepUs - before.stepUs) / 1e6));
        }
      }
      await untilQuiet(other);
      res[side].ttftNew.push((await chat(url, schema(`field_${rep}_${side}_${Date.now() % 1e6}`), 8)).ttftMs);
      res[side].ttftCached.push((await chat(url, fixed, 8)).ttftMs);
    }
    console.error(`[structured] rep ${rep + 1}/${reps}`);
  }
} finally {
  await Promise.allSettled([servers.ours.stop(), servers.theirs.stop()]);
}

const m = (side: "ours" | "theirs", k: Key) => median(res[side][k]);
const rows: [string, string, string, string][] = [];
for (const c of ["1", "8"] as const) {
  const k = `c${c}` as Key, plain = `c${c}plain` as Key;
  rows.push([`concurrency ${c}, constrained: tokens/s`, m("ours", k).toFixed(1), m("theirs", k).toFixed(1), `${(m("ours", k) / m("theirs", k)).toFixed(2)}×`]);
  rows.push([`concurrency ${c}, unconstrained: tokens/s`, m("ours", plain).toFixed(1), m("theirs", plain).toFixed(1), `${(m("ours", plain) / m("theirs", plain)).toFixed(2)}×`]);
  rows.push([`concurrency ${c}, constrained / own unconstrained`, `${(m("ours", k) / m("ours", plain)).toFixed(2)}×`, `${(m("theirs", k) / m("theirs", plain)).toFixed(2)}×`, ""]);
}
const engineRatio = median(engineRate.c8) / median(engineRate.c8plain);
rows.push(["concurrency 8, engine step time only (ours, /api/stats): constrained / own unconstrained", `${engineRatio.toFixed(2)}× (${median(engineRate.c8).toFixed(0)} / ${median(engineRate.c8plain).toFixed(0)} tokens/s)`, "–", ""]);
rows.push(["TTFT, a schema new to the server, ms", m("ours", "ttftNew").toFixed(0), m("theirs", "ttftNew").toFixed(0), `${(m("ours", "ttftNew") / m("theirs", "ttftNew")).toFixed(2)}×`]);
rows.push(["TTFT, the schema compiled before, ms", m("ours", "ttftCached").toFixed(0), m("theirs", "ttftCached").toFixed(0), `${(m("ours", "ttftCached") / m("theirs", "ttftCached")).toFixed(2)}×`]);
const table = [
  `Constrained decoding, ours vs upstream llama-server (--kv-unified --jinja), ${real ? "SmolLM2-135M-Instruct Q4_1" : "the random-weight bench model"}, 2 threads, 8 slots, temperature 1, ≤ 96 tokens, concurrency 8 as 8 clients × 4 requests, nested $defs schema through json_schema on /v1/completions, ${reps} alternating repetition(s), medians; ${cpuModel()}; ${new Date().toISOString()}`,
  "",
  "| workload | ours | llama-server | ours / llama-server |",
  "|---|---|---|---|",
  ...rows.map((r) => `| ${r.join(" | ")} |`),
  "",
  `Our answers that ended with "stop": ${checked.valid} of ${checked.stopped} validate against the schema (ajv). "Engine step time only": tokens generated over the summed time of our engine's decode steps (scheduling, llama_decode, masks, sampling), without the gaps where a client had no request in flight; the closed loop's tokens/s also counts the run's tail, where constrained answers, which end at different lengths, leave fewer than 8 clients busy.`,
  ...checked.invalid.map((x) => `- not valid: ${x}`),
].join("\n");
console.log(table);
writeSection(join(import.meta.dir, real ? "results-structured-smollm2.md" : "results-structured.md"), "structured", `Command: \`bun bench/structured.ts${real ? " --model=smollm2" : ""} --reps=${reps}\`\n\n${table}`);
process.exit(0);
