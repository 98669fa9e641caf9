// `bun run cluster -- --replicas N [--port P] [--slots M]`: N replicas of the server, one Redis
// (their shared session store) and HAProxy in front routing by request_id, all on loopback. Prints
// the front's URL; Ctrl-C stops everything (the replicas drain first). Settings in the environment
// (MODEL_PATH, PARALLEL, …) apply to every replica. `--print-config=example|k8s` prints
// deploy/haproxy.cfg or deploy/k8s/haproxy.cfg (the generator's output for those layouts).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalCluster } from "../src/cluster/cluster.ts";
import { exampleConfig, kubernetesConfig } from "../src/cluster/haproxy-config.ts";
import { missingCommands } from "../src/cluster/processes.ts";
import { loadSettings } from "../src/config.ts";
import { resolveModelPath } from "../src/engine/model-path.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { replicas: { type: "string", default: "2" }, slots: { type: "string" }, port: { type: "string" }, "print-config": { type: "string" } },
});

if (values["print-config"] !== undefined) {
  process.stdout.write(values["print-config"] === "k8s" ? kubernetesConfig() : exampleConfig());
  process.exit(0);
}

const fail = (line: string): never => {
  console.error(`[cluster] ${line}`);
  process.exit(1);
};
const replicas = Number(values.replicas);
if (!Number.isInteger(replicas) || replicas < 1 || replicas > 64) fail(`--replicas must be an integer from 1 to 64, got "${values.replicas}"`);
const slots = values.slots === undefined ? replicas : Number(values.slots);
if (!Number.isInteger(slots) || slots < replicas || slots > 64) fail(`--slots must be an integer from --replicas to 64, got "${values.slots}"`);
const port = values.port === undefined ? Number(process.env.PORT || 8080) : Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port must be a TCP port, got "${values.port}"`);

const missing = missingCommands({ "redis-server": "redis-server", haproxy: "haproxy" });
if (missing.length > 0) fail(`missing ${missing.join(" and ")}: install with \`apt-get install -y ${missing.join(" ")}\` (Debian/Ubuntu) and run again`);

// built and fetched once here, not by every replica at once
const root = join(import.meta.dir, "..");
const env: Record<string, string> = {};
if (!process.env.LLM_LIB_PATH) {
  const r = spawnSync("bash", [join(root, "build-native.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) process.exit(r.status ?? 1);
  env.LLM_LIB_PATH = join(root, "native/build/libllmshim.so");
}
env.MODEL_PATH = await resolveModelPath(loadSettings({ ...process.env, PORT: undefined }));

console.log(`[cluster] starting Redis, ${replicas} replica(s) and HAProxy…`);
const cluster = await LocalCluster.start({ replicas, slots, port, env }).catch((err) => fail(`could not start: ${(err as Error).message}`));
for (const s of cluster.slots) {
  const r = cluster.replicas.get(s.name);
  console.log(`[cluster] ${s.name}  ${r ? `http://${s.address}  pid ${r.pid}` : `http://${s.address}  (slot, not started)`}`);
}
console.log(`[cluster] redis   ${cluster.redis.url}`);
console.log(`[cluster] front   ${cluster.front}   (HAProxy: requests routed by request_id; Ctrl-C stops everything)`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log("[cluster] stopping: HAProxy, then the replicas (they drain), then Redis");
  await cluster.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
for (const r of cluster.replicas.values()) {
  void r.exited.then((code) => !stopping && console.log(`[cluster] replica ${r.name} exited (${code ?? "signal"}); HAProxy routes around it`));
}
