// `bun bench/cluster.ts [--model=smollm2|bench|tiny] [--reps=N]`: the cost of scale-out on a local
// cluster (2 replicas, HAProxy, Redis; src/cluster/cluster.ts):
//   - TTFT added by the HAProxy hop (p50, p99): the same kind of request direct to a replica and
//     through the front to that replica, interleaved;
//   - failover: kill -9 of the replica holding a session, then the time until a continuation of
//     it through HAProxy succeeds (and its TTFT), the replica restarted between repetitions;
//   - restore TTFT of a ~1000-token session from Redis on another replica, against a restore from
//     a local SESSION_DIR store (one server, SESSION_RAM_BYTES=0) and against decoding it again.
// Prints a table and writes it into bench/results.md (its own section; bench/run.ts keeps it).
// Throughput scaling is not measured: this machine has 2 cores. See docs/scale-out.md.
import { RedisClient } from "bun";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalCluster } from "../src/cluster/cluster.ts";
import { missingCommands } from "../src/cluster/processes.ts";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { sessionKey } from "../src/sessions/store.ts";
import { oursGenerate } from "./client.ts";
import { words } from "./prompts.ts";
import { startOurs } from "./servers.ts";
import { median, percentile } from "./stats.ts";
import { coreCount, cpuModel, fmt, writeSection } from "./table.ts";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const reps = Number(arg("reps", "5"));
const hops = Number(arg("hops", "100"));
const modelName = arg("model", "smollm2");
const say = (m: string) => console.error(`[bench:cluster] ${m}`);

const missing = missingCommands({ "redis-server": "redis-server", haproxy: "haproxy" });
if (missing.length > 0) {
  console.error(`[bench:cluster] missing ${missing.join(" and ")}: apt-get install -y ${missing.join(" ")}`);
  process.exit(1);
}
const modelPath = modelName === "smollm2" ? await ensureDefaultModel() : await ensureModel(modelName as "bench" | "tiny");
const SHAPE = { PARALLEL: "2", CTX_SIZE: "2048", THREADS: "1", THREADS_BATCH: "1" };
const env = { MODEL_PATH: modelPath, LLM_LIB_PATH: join(import.meta.dir, "../native/build/libllmshim.so"), ...SHAPE };
const LONG = words("session", 700, 1); // about 1000 tokens with SmolLM2's vocabulary

const cluster = await LocalCluster.start({ replicas: 2, env, checkIntervalMs: 500 });
const t0 = performance.now();
let serial = 0;
const fresh = (tag: string) => `${tag}-${process.pid}-${++serial}`;

const idOn = async (replica: string, tag: string) => (await cluster.idsOn(replica, 1, fresh(tag)))[0]!;
// two tokens: the first one's text arrives before the response ends (which waits for the session's writes)
const ttft = async (base: string, requestId: string, prompt: string, n = 2) => (await oursGenerate(base, { requestId, prompt, maxNewTokens: n })).ttftMs;

try {
  // 1. the hop: fresh short sessions on r1, direct and through HAProxy, interleaved
  say(`hop: ${hops} requests each way`);
  const direct: number[] = [], proxied: number[] = [];
  const r1 = () => cluster.replicas.get("r1")!.url;
  for (let i = 0; i < hops; i++) {
    direct.push(await ttft(r1(), await idOn("r1", "hop-d"), "Hello there, how are you today?"));
    proxied.push(await ttft(cluster.front, await idOn("r1", "hop-p"), "Hello there, how are you today?"));
  }

  // 2. restore of a long session on the other replica (from Redis), and its plain continuation
  say(`restore: ${reps} sessions of ~1000 tokens moved from r1 to r2`);
  const fromRedis: number[] = [], inKv: number[] = [];
  let kvBytesPerToken = NaN;
  for (let i = 0; i < reps; i++) {
    const id = await idOn("r1", "restore");
    await oursGenerate(cluster.front, { requestId: id, prompt: LONG, maxNewTokens: 8 });
    if (i === 0) kvBytesPerToken = await kvBytesPerCell(id);
    const r2 = cluster.replicas.get("r2")!.url;
    fromRedis.push(await ttft(r2, id, " and"));
    inKv.push(await ttft(r2, id, " more"));
  }

  // 3. failover: kill -9 the holder, continue through HAProxy at once
  say(`failover: ${reps} kills of r1`);
  const failover: number[] = [], failoverTtft: number[] = [], failoverDone: number[] = [];
  for (let i = 0; i < reps; i++) {
    const id = await idOn("r1", "failover");
    await oursGenerate(cluster.front, { requestId: id, prompt: LONG, maxNewTokens: 8 });
    const r1p = cluster.replicas.get("r1")!;
    r1p.kill();
    const killed = performance.now();
    let ok: { ttftMs: number; totalMs: number } | null = null;
    const refused: string[] = [];
    let started = killed;
    while (ok === null) {
      started = performance.now();
      ok = await oursGenerate(cluster.front, { requestId: id, prompt: " and", maxNewTokens: 2 }).catch((e) => (refused.push((e as Error).message.slice(0, 120)), null));
    }
    if (refused.length) say(`failover ${i}: ${refused.length} attempt(s) refused first: ${refused[0]}`);
    failover.push(started - killed + ok.ttftMs);
    failoverTtft.push(ok.ttftMs);
    failoverDone.push(started - killed + ok.totalMs);
    await r1p.exited;
    await cluster.startSlot("r1");
    await cluster.waitRouted(["r1"]);
  }

  // 4. the same restore from a local directory store, and decoding again (one server each)
  say("local store and recompute baselines");
  const local = async (storeEnv: Record<string, string>) => {
    const s = await startOurs(modelPath, { threads: 1, parallel: 1, ctx: 2048 }, 180_000, { ...SHAPE, PARALLEL: "1", CACHE_SEQUENCES: "1", SESSION_RAM_BYTES: "0", ...storeEnv });
    const out: number[] = [];
    try {
      for (let i = 0; i < reps; i++) {
        const id = fresh("local");
        await oursGenerate(s.url, { requestId: id, prompt: LONG, maxNewTokens: 8 });
        await oursGenerate(s.url, { requestId: fresh("push"), prompt: "Push it out of its slot", maxNewTokens: 1 });
        await Bun.sleep(200); // the evicted state's write lands
        out.push(await ttft(s.url, id, " and"));
      }
    } finally {
      await s.stop();
    }
    return out;
  };
  const fromDir = await local({ SESSION_STORE: "dir", SESSION_DIR: mkdtempSync(join(tmpdir(), "bench-cluster-")) });
  const recompute = await local({ SESSION_STORE: "off" });

  const ms = (xs: number[]) => `${fmt(median(xs), 1)} ms`;
  const rows = [
    ["TTFT, fresh short session on r1, direct (p50 / p99)", `${fmt(percentile(direct, 50), 2)} / ${fmt(percentile(direct, 99), 2)} ms`],
    ["TTFT, same through HAProxy (p50 / p99)", `${fmt(percentile(proxied, 50), 2)} / ${fmt(percentile(proxied, 99), 2)} ms`],
    ["added by the HAProxy hop (p50 / p99)", `${fmt(percentile(proxied, 50) - percentile(direct, 50), 2)} / ${fmt(percentile(proxied, 99) - percentile(direct, 99), 2)} ms`],
    ["kill -9 of the holder → first token of its continuation through HAProxy (median)", ms(failover)],
    ["kill -9 of the holder → that continuation complete and durable (median)", ms(failoverDone)],
    ["  TTFT of that continuation (restored from Redis on the other replica, median)", ms(failoverTtft)],
    ["restore TTFT of a ~1000-token session on another replica, from Redis (median)", ms(fromRedis)],
    ["restore TTFT of the same from a local SESSION_DIR store (median)", ms(fromDir)],
    ["TTFT decoding the session again (no store, median)", ms(recompute)],
    ["TTFT continuing it in the KV cache (median)", ms(inKv)],
    ["KV state per token (its Redis record / its KV cells)", `${fmt(kvBytesPerToken, 0)} B`],
  ];
  const table = ["| Measure | Value |", "|---|---|", ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join("\n");
  const report = `## Scale-out: 2 replicas behind HAProxy, sessions in Redis (\`bun bench/cluster.ts --model=${modelName} --reps=${reps}\`)

Machine: ${cpuModel()}, ${coreCount()} cores; replicas THREADS 1, PARALLEL ${SHAPE.PARALLEL}, CTX_SIZE ${SHAPE.CTX_SIZE}; model ${modelPath.split("/").pop()}; HAProxy health checks every 500 ms. Run time ${fmt((performance.now() - t0) / 1000, 0)} s. ${hops} requests per hop path, ${reps} repetitions of the others.

${table}

Throughput scaling is not claimed (2 cores here); the capacity arithmetic is in docs/scale-out.md.
`;
  console.log(report);
  writeSection(join(import.meta.dir, "results.md"), "cluster", report);
  say("wrote its section of bench/results.md");
} finally {
  await cluster.stop();
}

/** One session's KV record in Redis (written when its request finished) over the cells it holds. */
async function kvBytesPerCell(id: string): Promise<number> {
  const info = (await (await fetch(`${cluster.front}/api/cache/${encodeURIComponent(id)}`)).json()) as { kv_cells: number };
  const c = new RedisClient(cluster.redis.url);
  const bytes = Number(await c.send("STRLEN", [`llm:sess:${sessionKey(id)}:kv`]));
  c.close();
  return bytes / info.kv_cells;
}
