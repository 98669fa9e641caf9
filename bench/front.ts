// `bun bench/front.ts [--reps=3]`: what the pipelining front (PIPELINING=true, the default) costs
// against Bun serving the port itself (PIPELINING=false), on the workloads where an HTTP hop shows
// most: tiny requests, and many streams of a model so small that HTTP is a large share of the time.
// Both servers are up at once and measured alternately. Prints a table and writes
// bench/results-front.md.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureModel } from "../src/gguf/models.ts";
import { untilQuiet } from "./quiet.ts";
import { startOurs, type OurServer } from "./servers.ts";
import { median, percentile } from "./stats.ts";

const reps = Math.max(1, Number(process.argv.find((a) => a.startsWith("--reps="))?.slice(7) ?? 3) | 0);
const model = await ensureModel("tiny");
const shape = { threads: 2, parallel: 16, ctx: 512 };
const servers = {
  direct: await startOurs(model, shape, 120_000, { PIPELINING: "false", SESSION_STORE: "off" }),
  front: await startOurs(model, shape, 120_000, { PIPELINING: "true", SESSION_STORE: "off" }),
};

/** sequential GET /health on one kept-alive connection: latency in µs */
async function healthLatency(s: OurServer, n = 2000): Promise<number[]> {
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await (await fetch(`${s.url}/health`)).arrayBuffer();
    us.push((performance.now() - t0) * 1000);
  }
  return us;
}

/** GET /health from `c` concurrent loops for `ms`: requests per second */
async function healthThroughput(s: OurServer, c = 32, ms = 2000): Promise<number> {
  const end = performance.now() + ms;
  let done = 0;
  await Promise.all(Array.from({ length: c }, async () => {
    while (performance.now() < end) {
      await (await fetch(`${s.url}/health`)).arrayBuffer();
      done++;
    }
  }));
  return done / (ms / 1000);
}

let n = 0;
/** 16 concurrent streamed generations of 128 tokens, twice over: aggregate tokens/s */
async function streams(s: OurServer): Promise<number> {
  const t0 = performance.now();
  let tokens = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let k = 0; k < 2; k++) {
      const r = await fetch(`${s.url}/api/generate-one`, {
        method: "POST",
        body: JSON.stringify({ request_id: `front-${n++}`, prompt: "Once upon a time", generation_config: { do_sample: false, max_new_tokens: 128 } }),
      });
      for await (const _ of r.body!) {} // every chunk read as it comes
      tokens += 128;
    }
  }));
  return tokens / ((performance.now() - t0) / 1000);
}

type Row = { p50: number[]; p99: number[]; rps: number[]; tps: number[] };
const res: Record<keyof typeof servers, Row> = { direct: { p50: [], p99: [], rps: [], tps: [] }, front: { p50: [], p99: [], rps: [], tps: [] } };
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const [k, other] of [["direct", "front"], ["front", "direct"]] as const) {
      const s = servers[k];
      await untilQuiet(servers[other].pid);
      const lat = await healthLatency(s);
      res[k].p50.push(percentile(lat, 50));
      res[k].p99.push(percentile(lat, 99));
      res[k].rps.push(await healthThroughput(s));
      res[k].tps.push(await streams(s));
    }
    console.error(`[front] rep ${rep + 1}/${reps} done`);
  }
} finally {
  await Promise.allSettled([servers.direct.stop(), servers.front.stop()]);
}

const rows: [string, keyof Row, number][] = [
  ["GET /health latency p50 (µs, sequential, kept alive)", "p50", 0],
  ["GET /health latency p99 (µs)", "p99", 0],
  ["GET /health requests/s (32 concurrent loops)", "rps", 0],
  ["16 streams × 128 tokens, tiny model: aggregate tokens/s", "tps", 0],
];
const table = [
  `Pipelining front vs Bun alone: ${reps} alternating repetitions, medians (tiny model, 2 threads, PARALLEL 16), ${new Date().toISOString()}`,
  "",
  "| metric | PIPELINING=false (Bun alone) | PIPELINING=true (front) | front / alone |",
  "|---|---|---|---|",
  ...rows.map(([label, key]) => {
    const a = median(res.direct[key]), b = median(res.front[key]);
    return `| ${label} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(3)} |`;
  }),
].join("\n");
console.log(table);
writeFileSync(join(import.meta.dir, "results-front.md"), table + "\n");
process.exit(0);
