// Starts llama.cpp's own llama-server (built from the same source and flags by build-native.sh)
// on a loopback port; used as the reference in parity tests and as the peer in benchmarks.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");

/** Path of a llama.cpp tool, building it (cached) on first use. */
export function llamaTool(name: string): string {
  const r = spawnSync("bash", [join(root, "build-native.sh"), "--tools", name], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building ${name} failed (status ${r.status})`);
  return r.stdout.trim().split("\n").pop()!;
}

export interface LlamaServer {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export async function startLlamaServer(modelPath: string, opts: { threads: number; ctx: number; parallel: number; extra?: string[] }): Promise<LlamaServer> {
  const bin = llamaTool("llama-server");
  const port = 20000 + Math.floor(Math.random() * 20000);
  const args = ["-m", modelPath, "--host", "127.0.0.1", "--port", String(port), "-t", String(opts.threads), "-tb", String(opts.threads),
    "-c", String(opts.ctx * opts.parallel), "-np", String(opts.parallel), "--kv-unified", "--no-webui", "--log-disable", ...(opts.extra ?? [])];
  const proc = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`llama-server exited (${proc.exitCode}): ${stderr}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`llama-server did not become healthy: ${stderr}`);
    await Bun.sleep(100);
  }
  return {
    url,
    proc,
    stop: async () => {
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r)));
    },
  };
}

/** Greedy token ids from llama-server for a prompt given as token ids. */
export async function serverGreedy(server: LlamaServer, prompt: ArrayLike<number>, n: number): Promise<number[]> {
  const r = await fetch(`${server.url}/completion`, {
    method: "POST",
    body: JSON.stringify({ prompt: Array.from(prompt), n_predict: n, samplers: ["top_k"], top_k: 1, temperature: 0, return_tokens: true, cache_prompt: false }),
  });
  if (!r.ok) throw new Error(`llama-server /completion: ${r.status} ${await r.text()}`);
  const body = (await r.json()) as { tokens: number[] };
  return body.tokens;
}
