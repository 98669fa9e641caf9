// `bun bench/slow-clients.ts [--clients=500]`: 500 slow clients each open a connection and send a
// request head plus a trickle of its body, then hold it; meanwhile /health is polled and short
// generations are sent. Reports /health p50/p99, the generations' 503 share and latency, and RSS,
// under the default MAX_CONNECTIONS and under a bound below the slow-client count. Writes
// bench/results-hardening.md.
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { ensureModel } from "../src/gguf/models.ts";
import { memoryOf, ROOT, startOurs } from "./servers.ts";
import { median, percentile } from "./stats.ts";
import { coreCount, cpuModel, fmt } from "./table.ts";

const clients = Number(process.argv.find((a) => a.startsWith("--clients="))?.slice(10) ?? 500);
const model = await ensureModel("tiny");
const shape = { threads: coreCount(), parallel: 4, ctx: 512 };
const rows: string[] = [];

for (const maxConnections of [1024, Math.floor(clients / 2)]) {
  const server = await startOurs(model, shape, 120_000, { MAX_CONNECTIONS: String(maxConnections), IDLE_TIMEOUT_S: "120", SESSION_STORE: "off" });
  const port = Number(new URL(server.url).port);
  const rssBefore = memoryOf(server.pid).rssMiB;
  const socks: Socket[] = [];
  for (let i = 0; i < clients; i++) {
    const s = connect({ host: "127.0.0.1", port });
    s.on("error", () => {});
    s.on("connect", () => s.write(`POST /api/generate-one HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n{"request_id":"slow-${i}","prompt":"`));
    socks.push(s);
  }
  await Bun.sleep(1000); // all heads in
  const trickle = setInterval(() => { for (const s of socks) s.write("x"); }, 500); // bytes keep coming: no idle timeout
  const health: number[] = [];
  const gens: { status: number; ms: number }[] = [];
  const probe = (async () => {
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      await fetch(`${server.url}/health`);
      health.push(performance.now() - t0);
      await Bun.sleep(10);
    }
  })();
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const r = await fetch(`${server.url}/api/generate-one`, { method: "POST", body: JSON.stringify({ request_id: `fast-${i}`, prompt: "Hello there", stream_response: false, generation_config: { max_new_tokens: 8 } }) });
    await r.arrayBuffer();
    gens.push({ status: r.status, ms: performance.now() - t0 });
  }
  await probe;
  const rss = memoryOf(server.pid).rssMiB;
  clearInterval(trickle);
  for (const s of socks) s.destroy();
  await server.stop();
  const ok = gens.filter((g) => g.status === 200);
  const refused = gens.filter((g) => g.status === 503).length;
  rows.push(`| ${clients} slow clients, MAX_CONNECTIONS ${maxConnections} | ${fmt(median(health))} | ${fmt(percentile(health, 99))} | ${fmt(Math.max(...health))} | ${refused}/${gens.length} (${fmt((100 * refused) / gens.length, 0)} %) | ${ok.length ? fmt(median(ok.map((g) => g.ms))) : "–"} | ${fmt(rssBefore, 0)} → ${fmt(rss, 0)} |`);
  console.error(`[slow-clients] MAX_CONNECTIONS ${maxConnections}: /health p99 ${fmt(percentile(health, 99))} ms, 503 ${refused}/${gens.length}`);
}

const report = [
  `# Slow clients (${new Date().toISOString().slice(0, 16)} UTC)`, "",
  `- machine: ${cpuModel()}, ${coreCount()} cores; tiny synthetic model, PARALLEL ${shape.parallel}`,
  `- each slow client sends a request head with Content-Length 4 MiB and one body byte every 500 ms (never finishing); meanwhile 300 /health polls (10 ms apart) and 20 sequential 8-token generations`,
  "",
  "| Load | /health p50 ms | /health p99 ms | /health max ms | generations refused (503) | generation latency p50 ms | server RSS MiB (before → during) |",
  "|---|---|---|---|---|---|---|",
  ...rows, "",
].join("\n");
console.log(report);
writeFileSync(join(ROOT, "bench/results-hardening.md"), report);
