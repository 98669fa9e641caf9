// Our server as a real child process (`bun scripts/serve.ts`), for restart, crash and drain tests:
// the cluster's launcher (src/cluster/processes.ts) on a random port.
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { startServer } from "../../src/cluster/processes.ts";
import { randomPort } from "./llama-server.ts";

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
  const s = await startServer("the server", randomPort(40000), { LLM_LIB_PATH: join(root, "native/build/libllmshim.so"), ...env }, 60_000);
  return {
    url: s.url, proc: s.proc, exited: s.exited, log: s.log,
    post: (path, body) => fetch(`${s.url}${path}`, { method: "POST", body: JSON.stringify(body) }),
  };
}
