// Starts a redis-server (Debian's, from PATH) on a free loopback port with its own data directory
// and an fsync-always append-only file, so a resolved write is a durable one. Used by
// `bun run cluster`, the cluster bench and the tests (each starts and stops its own).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  url: string;
  port: number;
  /** its data directory (the append-only file lives here) */
  dir: string;
  pid: number;
  /** SIGTERM, wait for the exit, remove the data directory */
  stop(): Promise<void>;
  /** SIGKILL, leaving the data directory (a crash) */
  kill(): void;
}

export const hasRedis = (): boolean => Bun.which("redis-server") !== null;

/** A port the kernel just handed out on 127.0.0.1 (free unless someone takes it first). */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** true once the redis-server with this pid answers on the port (PING, then INFO's process_id, so an
 *  older server still holding the port does not pass for the new one) */
async function answers(port: number, pid: number): Promise<boolean> {
  const { promise, resolve } = Promise.withResolvers<boolean>();
  let got = "";
  const timer = setTimeout(() => resolve(false), 500);
  try {
    const sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write("PING\r\nINFO server\r\n");
        },
        data(_s, chunk) {
          got += chunk.toString();
          const m = /process_id:(\d+)\r\n/.exec(got);
          if (m) resolve(got.startsWith("+PONG\r\n") && Number(m[1]) === pid);
        },
        close: () => resolve(false),
        error: () => resolve(false),
      },
    });
    const ok = await promise;
    sock.end();
    return ok;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Starts redis-server; `port` and `dir` reuse an earlier server's (a restart after kill()). */
export async function startRedis(opts: { port?: number; dir?: string } = {}): Promise<RedisServer> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "redis-test-"));
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? freePort();
    const proc = Bun.spawn(
      ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
        "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    const log: string[] = [];
    const drain = async (s: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder();
      for await (const chunk of s) log.push(dec.decode(chunk, { stream: true }));
    };
    const drained = Promise.all([drain(proc.stdout), drain(proc.stderr)]).catch(() => {});
    const deadline = Date.now() + 10_000;
    let exited = false;
    void proc.exited.then(() => (exited = true));
    let ready = false;
    while (!exited && !ready && Date.now() < deadline) {
      ready = await answers(port, proc.pid);
      if (!ready) await Bun.sleep(50);
    }
    if (ready) {
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        dir,
        pid: proc.pid,
        async stop() {
          proc.kill("SIGTERM");
          await proc.exited;
          rmSync(dir, { recursive: true, force: true });
        },
        kill() {
          proc.kill("SIGKILL");
        },
      };
    }
    const died = exited;
    proc.kill("SIGKILL");
    await proc.exited;
    await drained;
    const text = log.join("");
    // someone took the port between freePort() and the bind (try another), or a killed server's
    // socket is not gone yet (try the same one again shortly)
    if (died && attempt < 5 && /address already in use/i.test(text)) {
      if (opts.port !== undefined) await Bun.sleep(200);
      continue;
    }
    if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server on port ${port} ${died ? `exited (${proc.exitCode})` : "did not answer PING within 10 s"}:\n${text}`);
  }
}
