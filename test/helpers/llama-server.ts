// Starts llama.cpp's own llama-server (built from the same source and flags by build-native.sh)
// on a loopback port; used as the reference in parity tests and as the peer in benchmarks.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { cacheRoot } from "../../src/gguf/paths.ts";

const root = join(import.meta.dir, "../..");

/**
 * Path of a llama.cpp tool, building it (cached) on first use: from the same patched source as our
 * library (the parity reference), or from upstream llama.cpp (`upstream`: the benchmarks' peer).
 */
export function llamaTool(name: string, o: { upstream?: boolean } = {}): string {
  // an upstream build must not replace our library: its copy goes to the cache
  const env = o.upstream ? { ...process.env, LLAMA_PATCHES: "0", LLM_LIB_OUT: join(cacheRoot(), "upstream", "libllmshim.so") } : process.env;
  const r = spawnSync("bash", [join(root, "build-native.sh"), "--tools", name], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8", env });
  if (r.status !== 0) throw new Error(`building ${name} failed (status ${r.status})`);
  return r.stdout.trim().split("\n").pop()!;
}

/** A random loopback port in [base, base + 20000). */
export const randomPort = (base = 20000) => base + Math.floor(Math.random() * 20000);

/** Polls GET `url`/health every 100 ms until it answers 200; throws with the process's log if it exits first or time runs out. */
export async function waitHealthy(url: string, o: { what: string; exitCode: () => number | null; log: () => string; timeoutMs?: number }): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const code = o.exitCode();
    if (code !== null) throw new Error(`${o.what} exited (${code}) before becoming healthy:\n${o.log()}`);
    const r = await fetch(`${url}/health`).catch(() => null);
    if (r?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${o.what} was not healthy within ${timeoutMs / 1000} s:\n${o.log()}`);
    await Bun.sleep(100);
  }
}

export interface LlamaServer {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/**
 * `flashAttn`: the attention the reference runs, as our engine's setting (-1 auto, 0 off, 1 on); a
 * parity reference passes the setting our engine serves, so that both run the same kernels.
 */
export async function startLlamaServer(modelPath: string, opts: { threads: number; ctx: number; parallel: number; extra?: string[]; upstream?: boolean; flashAttn?: number }): Promise<LlamaServer> {
  const bin = llamaTool("llama-server", { upstream: opts.upstream });
  const port = randomPort();
  const args = ["-m", modelPath, "--host", "127.0.0.1", "--port", String(port), "-t", String(opts.threads), "-tb", String(opts.threads),
    "-c", String(opts.ctx * opts.parallel), "-np", String(opts.parallel), "--kv-unified", "--no-webui", "--log-disable",
    ...(opts.flashAttn === undefined ? [] : ["-fa", opts.flashAttn === 1 ? "on" : opts.flashAttn === 0 ? "off" : "auto"]), ...(opts.extra ?? [])];
  const proc = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, { what: "llama-server", exitCode: () => proc.exitCode, log: () => stderr });
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
