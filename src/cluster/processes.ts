// Child processes of a local cluster: HAProxy and the replicas (Redis: redis-process.ts). Each
// start waits until the process serves, and fails with its log when it exits or never does.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { freePort } from "./redis-process.ts";

export { freePort };

const root = join(import.meta.dir, "../..");

export interface Child {
  name: string;
  pid: number;
  proc: ChildProcess;
  /** everything it printed so far */
  log(): string;
  /** resolves with the exit code (null when killed by a signal) */
  exited: Promise<number | null>;
  /** SIGTERM (a replica drains first), then waits for the exit (SIGKILL after `ms`) */
  stop(ms?: number): Promise<void>;
  /** SIGKILL: a crash */
  kill(): void;
}

/** The package that provides a missing command, for one clear line ("apt-get install -y haproxy"). */
export function missingCommands(commands: Record<string, string>): string[] {
  return Object.entries(commands).filter(([cmd]) => Bun.which(cmd) === null).map(([, pkg]) => pkg);
}

function child(name: string, cmd: string, args: string[], env: Record<string, string | undefined>): Child {
  const proc = spawn(cmd, args, { cwd: root, env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stdout!.on("data", (d) => (log += d));
  proc.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    proc.once("exit", (code) => resolve(code));
  });
  return {
    name, pid: proc.pid ?? -1, proc, exited, log: () => log,
    async stop(ms = 60_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
      await exited;
      clearTimeout(timer);
    },
    kill() {
      proc.kill("SIGKILL");
    },
  };
}

/** Polls until `ready()` holds; throws with the child's log when it exits first or time runs out. */
async function until(c: Child, ready: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void c.exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`${c.name} exited (${c.proc.exitCode ?? c.proc.signalCode}) before ${what}:\n${c.log()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      c.kill();
      throw new Error(`${c.name} did not ${what} within ${timeoutMs / 1000} s:\n${c.log()}`);
    }
    await Bun.sleep(50);
  }
}

/** HAProxy in the foreground on `configPath`; ready once its front port accepts connections. */
export async function startHaproxy(configPath: string, frontPort: number): Promise<Child> {
  const c = child("haproxy", "haproxy", ["-db", "-f", configPath], process.env);
  await until(c, async () => {
    const s = await Bun.connect({ hostname: "127.0.0.1", port: frontPort, socket: { data() {} } });
    s.end();
    return true;
  }, 10_000, "listen");
  return c;
}

/**
 * Our server as a child process (`bun scripts/serve.ts`) on 127.0.0.1:`port` with `env` over this
 * process's; resolves once /health answers 200 (default wait 10 minutes: a first start may fetch
 * the default model). The replicas here and the tests' restart and crash servers are this.
 */
export async function startServer(name: string, port: number, env: Record<string, string>, timeoutMs = 600_000): Promise<Child & { url: string }> {
  const c = child(name, process.execPath, [join(root, "scripts/serve.ts")], { ...process.env, HOST: "127.0.0.1", PORT: String(port), LOG_EVICTIONS: "false", ...env });
  const url = `http://127.0.0.1:${port}`;
  await until(c, async () => (await fetch(`${url}/health`)).status === 200, timeoutMs, "become healthy");
  return Object.assign(c, { url });
}

/** One replica: our server with REPLICA_ID and the shared Redis store. */
export function startReplica(o: { name: string; port: number; redisUrl: string; env?: Record<string, string> }): Promise<Child & { url: string }> {
  return startServer(o.name, o.port, { REPLICA_ID: o.name, SESSION_STORE: o.redisUrl, ...o.env });
}
