// A local cluster on loopback: one Redis, N replicas sharing it as their session store, and HAProxy
// in front routing by request_id. Used by `bun run cluster`, the cluster test and bench/cluster.ts.
// Replica slots can be declared beyond those started: a slot started later joins once its health
// check passes, and takes over its share of the ids (restoring those sessions from Redis).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyConfig, SESSION_HEADER, type Replica } from "./haproxy-config.ts";
import { freePort, startHaproxy, startReplica, type Child } from "./processes.ts";
import { startRedis, type RedisServer } from "./redis-process.ts";

export interface ClusterOptions {
  /** replicas started now */
  replicas: number;
  /** replica slots in HAProxy's configuration (default: replicas); the rest start with startSlot() */
  slots?: number;
  /** HAProxy's front port on 127.0.0.1 (default: a free one) */
  port?: number;
  /** settings every replica gets (MODEL_PATH, LLM_LIB_PATH, …) */
  env?: Record<string, string>;
  /** milliseconds between HAProxy's health checks (default 1000) */
  checkIntervalMs?: number;
}

export type ReplicaProcess = Child & { url: string };

export class LocalCluster {
  readonly dir: string;
  readonly front: string;
  readonly slots: Replica[];
  readonly redis: RedisServer;
  haproxy: Child | null = null;
  /** by slot name; absent: not running */
  readonly replicas = new Map<string, ReplicaProcess>();
  readonly #env: Record<string, string>;
  /** SESSION_HEADER of the replicas (x-session-id unless the environment names another, or "" for none): HAProxy routes on it too */
  readonly sessionHeader: string;

  private constructor(dir: string, port: number, slots: Replica[], redis: RedisServer, env: Record<string, string>) {
    this.dir = dir;
    this.front = `http://127.0.0.1:${port}`;
    this.slots = slots;
    this.redis = redis;
    this.#env = env;
    this.sessionHeader = (env.SESSION_HEADER ?? process.env.SESSION_HEADER ?? SESSION_HEADER).trim().toLowerCase();
  }

  static async start(o: ClusterOptions): Promise<LocalCluster> {
    const dir = mkdtempSync(join(tmpdir(), "llm-cluster-"));
    const port = o.port ?? freePort();
    const slots = Array.from({ length: Math.max(o.slots ?? o.replicas, o.replicas) }, (_, i) => ({ name: `r${i + 1}`, address: `127.0.0.1:${freePort()}` }));
    mkdirSync(join(dir, "redis"));
    const redis = await startRedis({ dir: join(dir, "redis") }).catch((err) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
    const c = new LocalCluster(dir, port, slots, redis, o.env ?? {});
    try {
      await Promise.all(slots.slice(0, o.replicas).map((s) => c.startSlot(s.name)));
      const config = join(dir, "haproxy.cfg");
      writeFileSync(config, haproxyConfig({
        bind: `127.0.0.1:${port}`, replicas: slots, checkIntervalMs: o.checkIntervalMs, sessionHeader: c.sessionHeader, statsSocket: c.#socket,
      }));
      c.haproxy = await startHaproxy(config, port);
      // HAProxy starts every server as up: until a slot's checks fail, its ids would be redispatched
      await c.waitStates(Object.fromEntries(slots.map((s, i) => [s.name, i < o.replicas])));
      await c.waitRouted(slots.slice(0, o.replicas).map((s) => s.name));
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** Starts the replica of a declared slot and waits for its /health. */
  async startSlot(name: string, env: Record<string, string> = {}): Promise<ReplicaProcess> {
    const slot = this.slots.find((s) => s.name === name);
    if (!slot) throw new Error(`no replica slot named ${name}`);
    if (this.replicas.has(name)) throw new Error(`replica ${name} is already running`);
    const port = Number(slot.address.split(":")[1]);
    // set explicitly: the server's own default is no session header, and HAProxy routes on this one
    const r = await startReplica({ name, port, redisUrl: this.redis.url, env: { ...this.#env, SESSION_HEADER: this.sessionHeader, ...env } });
    this.replicas.set(name, r);
    void r.exited.then(() => this.replicas.get(name) === r && this.replicas.delete(name));
    return r;
  }

  get #socket(): string {
    return join(this.dir, "haproxy.sock");
  }

  /** Each slot's state by HAProxy's health checks (true: up), from its admin socket. */
  async serverStates(): Promise<Map<string, boolean>> {
    let text = "";
    await new Promise<void>((resolve, reject) => {
      Bun.connect({
        unix: this.#socket,
        socket: { open: (s) => void s.write("show servers state sessions\n"), data: (_s, d) => void (text += d.toString()), close: () => resolve(), error: (_s, e) => reject(e) },
      }).catch(reject);
    });
    const states = new Map<string, boolean>();
    for (const line of text.split("\n")) {
      const f = line.split(" "); // be_id be_name srv_id srv_name srv_addr srv_op_state ...
      if (f[1] === "sessions" && f.length > 5) states.set(f[3]!, f[5] === "2");
    }
    return states;
  }

  /** Waits until HAProxy sees each named slot up (true) or down (false). */
  async waitStates(want: Record<string, boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await this.serverStates().catch(() => new Map<string, boolean>());
      if (Object.entries(want).every(([name, up]) => now.get(name) === up)) return;
      if (Date.now() > deadline) throw new Error(`HAProxy's servers did not reach ${JSON.stringify(want)} within ${timeoutMs / 1000} s (now ${JSON.stringify([...now])})`);
      await Bun.sleep(50);
    }
  }

  /**
   * The replica HAProxy routes a session id to now: /health asked through the front with the id in
   * the session header, which is hashed as a body's request_id would be (null: no replica answered).
   */
  async routeOf(id: string): Promise<string | null> {
    if (!this.sessionHeader) throw new Error("routeOf needs a SESSION_HEADER: without one HAProxy routes /health by leastconn");
    const r = await fetch(`${this.front}/health`, { headers: { [this.sessionHeader]: id } }).catch(() => null);
    await r?.body?.cancel();
    return r?.status === 200 ? r.headers.get("x-replica") : null;
  }

  /** `count` ids `<tag>-<n>` that HAProxy routes to `replica` now. */
  async idsOn(replica: string, count: number, tag: string): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; out.length < count; i++) if ((await this.routeOf(`${tag}-${i}`)) === replica) out.push(`${tag}-${i}`);
    return out;
  }

  /** Waits until HAProxy sends requests to each named replica (their health checks passed), probing with fresh ids. */
  async waitRouted(names: string[], timeoutMs = 30_000): Promise<void> {
    const want = new Set(names);
    const deadline = Date.now() + timeoutMs;
    while (want.size > 0) {
      if (Date.now() > deadline) throw new Error(`HAProxy did not route to ${[...want].join(", ")} within ${timeoutMs / 1000} s:\n${this.haproxy?.log() ?? ""}`);
      const who = await this.routeOf(crypto.randomUUID());
      if (who) want.delete(who);
      else await Bun.sleep(50);
    }
  }

  /** Stops HAProxy, every replica (SIGTERM: they drain and write their sessions) and Redis; removes the directory. */
  async stop(): Promise<void> {
    await this.haproxy?.stop(5000);
    await Promise.all([...this.replicas.values()].map((r) => r.stop()));
    await this.redis.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
