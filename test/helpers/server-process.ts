// Our server as a real child process (`bun scripts/serve.ts`), for restart, crash and drain tests.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { randomPort, waitHealthy } from "./llama-server.ts";

const root = join(import.meta.dir, "../..");

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  log(): string;
  /** resolves with the exit code (null when killed by a signal) */
  exited: Promise<number | null>;
  /** POSTs JSON to `path` */
  post(path: string, body: unknown): Promise<Response>;
}

/** Starts the server with `env` (MODEL_PATH etc.) on a random port and waits until /health is 200. */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const port = randomPort(40000);
  const proc = spawn("bun", [join(root, "scripts/serve.ts")], {
    cwd: root,
    env: { ...process.env, LLM_LIB_PATH: join(root, "native/build/libllmshim.so"), HOST: "127.0.0.1", PORT: String(port), LOG_EVICTIONS: "false", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  proc.stdout!.on("data", (d) => (log += d));
  proc.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, { what: "the server", exitCode: () => proc.exitCode, log: () => log });
  return {
    url, proc, exited, log: () => log,
    post: (path, body) => fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) }),
  };
}
