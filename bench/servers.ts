// Starts and stops both servers for the benchmark, and reads their resident memory.
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EngineStats } from "../src/engine/messages.ts";
import { randomPort, startLlamaServer, waitHealthy } from "../test/helpers/llama-server.ts";

export const ROOT = join(import.meta.dir, "..");

export interface ServerShape {
  threads: number;
  parallel: number;
  /** tokens per sequence */
  ctx: number;
}

export interface BenchServer {
  name: string;
  url: string;
  pid: number;
  /** recent stderr/stdout lines, for error reports */
  log(): string;
  stop(): Promise<void>;
}

export interface OurServer extends BenchServer {
  stats(): Promise<EngineStats>;
}

function keepTail(stream: ReadableStream<Uint8Array>, append: (s: string) => void): void {
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of stream) append(decoder.decode(chunk, { stream: true }));
  })().catch(() => {});
}

/** `bun run scripts/serve.ts` on a loopback port; resolves once GET /health answers 200. */
export async function startOurs(modelPath: string, shape: ServerShape, timeoutMs = 180_000, env: Record<string, string> = {}): Promise<OurServer> {
  const port = randomPort();
  const proc = Bun.spawn([process.execPath, "run", "scripts/serve.ts"], {
    cwd: ROOT,
    env: {
      ...process.env, MODEL_PATH: modelPath, PORT: String(port), HOST: "127.0.0.1", THREADS: String(shape.threads),
      THREADS_BATCH: String(shape.threads), PARALLEL: String(shape.parallel), CTX_SIZE: String(shape.ctx),
      SESSION_DIR: mkdtempSync(join(tmpdir(), "bench-sessions-")), ...env, // bench sessions never pile up in the user's store
    },
    stdin: "ignore", stdout: "pipe", stderr: "pipe",
  });
  let tail = "";
  const append = (s: string) => void (tail = (tail + s).slice(-8000));
  keepTail(proc.stdout, append);
  keepTail(proc.stderr, append);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, { what: "our server", exitCode: () => proc.exitCode, log: () => tail, timeoutMs });
  } catch (err) {
    proc.kill();
    throw err;
  }
  return {
    name: "ours", url, pid: proc.pid,
    log: () => tail,
    stats: async () => {
      const r = await fetch(`${url}/api/stats`);
      if (!r.ok) throw new Error(`GET /api/stats: ${r.status} ${await r.text()}`);
      return (await r.json()) as EngineStats;
    },
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}

/** Upstream llama.cpp's llama-server (without native/patches) with the same threads, slots and per-sequence context. */
export async function startTheirs(modelPath: string, shape: ServerShape, extra: string[] = []): Promise<BenchServer> {
  const s = await startLlamaServer(modelPath, { threads: shape.threads, ctx: shape.ctx, parallel: shape.parallel, extra, upstream: true });
  let tail = "";
  s.proc.stderr?.on("data", (d) => (tail = (tail + d).slice(-8000)));
  const stop = async () => {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
    const timer = setTimeout(() => s.proc.kill("SIGKILL"), 5000);
    await Promise.race([s.stop(), new Promise((r) => s.proc.once("exit", r)), Bun.sleep(10_000)]);
    clearTimeout(timer);
  };
  return { name: "llama-server", url: s.url, pid: s.proc.pid!, log: () => tail, stop };
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return -1;
  }
}

/** pid and all its descendants that are alive now. */
export function processTree(root: number): number[] {
  const pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
  const children = new Map<number, number[]>();
  for (const pid of pids) {
    const ppid = parentOf(pid);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(pid);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

export interface Memory {
  /** VmRSS summed over the process tree, MiB */
  rssMiB: number;
  /** VmHWM (peak RSS) summed over the process tree, MiB */
  peakMiB: number;
}

export function memoryOf(root: number): Memory {
  let rss = 0;
  let hwm = 0;
  for (const pid of processTree(root)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      rss += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      hwm += Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {}
  }
  return { rssMiB: rss / 1024, peakMiB: hwm / 1024 };
}
