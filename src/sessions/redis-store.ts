// The persistent session tier in Redis (Bun's built-in client): one binary string per record plus an
// index for list(): a sorted set of `<key>:<kind>` scored by last use and a hash of byte lengths.
// Writes go through Lua scripts, so value and index change together; every call has a deadline.
import { RedisClient } from "bun";
import { checkKey } from "./dir-store.ts";
import type { RecordKind, SessionStore, StoredRecord } from "./store.ts";

export interface RedisStoreOptions {
  /** prefix of every Redis key this store touches (default "llm:sess:") */
  prefix?: string;
  /** deadline of one operation, connecting included (default 2000 ms) */
  timeoutMs?: number;
}

// KEYS: value, index, bytes. ARGV: data, member, now (ms).
const PUT = `redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], string.len(ARGV[1]))
return 1`;
// KEYS: meta value, kv value, index, bytes. ARGV: meta member, kv member.
const DELETE = `redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[1], ARGV[2])
return 1`;

/** The URL without its user name and password, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1");
}

export class RedisStore implements SessionStore {
  readonly description: string;
  /** replicas share it: a record this process never wrote may exist */
  readonly shared = true;
  readonly #url: string;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  #client: RedisClient | null = null;
  #connecting: Promise<RedisClient> | null = null;
  #closed = false;

  constructor(url: string, opts: RedisStoreOptions = {}) {
    this.#url = url;
    this.#prefix = opts.prefix ?? "llm:sess:";
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.description = redactUrl(url);
  }

  // Reconnection is ours, not the client's: its own retries give up for good after maxRetries, and
  // its offline queue would run a command we already reported as failed. So commands fail at once
  // while disconnected, and the next operation dials again.
  #connect(): Promise<RedisClient> {
    if (this.#closed) return Promise.reject(new Error(`session store ${this.description} is closed`));
    const c = this.#client;
    if (c?.connected) return Promise.resolve(c);
    if (this.#connecting) return this.#connecting;
    c?.close();
    const client = new RedisClient(this.#url, {
      connectionTimeout: this.#timeoutMs,
      autoReconnect: false,
      enableOfflineQueue: false,
    });
    this.#client = client;
    const p = client.connect().then(
      () => client,
      (e) => {
        client.close();
        throw e;
      },
    );
    this.#connecting = p;
    const done = () => {
      if (this.#connecting === p) this.#connecting = null;
    };
    p.then(done, done);
    return p;
  }

  /** Runs `op` on a connected client within the deadline; a timed-out client is dropped (it may be wedged). */
  async #run<T>(what: string, op: (c: RedisClient) => Promise<T>): Promise<T> {
    let timer: Timer | undefined;
    const work = this.#connect().then(op);
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        work.catch(() => {});
        const c = this.#client;
        this.#client = null;
        this.#connecting = null;
        c?.close();
        reject(Object.assign(new Error(`${this.description}: ${what} timed out after ${this.#timeoutMs} ms`), { code: "ETIMEDOUT" }));
      }, this.#timeoutMs);
    });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  #member(key: string, kind: RecordKind): string {
    checkKey(key);
    return `${key}:${kind}`;
  }

  async put(key: string, kind: RecordKind, data: Uint8Array): Promise<void> {
    const member = this.#member(key, kind);
    const p = this.#prefix;
    const args = [PUT, "3", p + member, `${p}index`, `${p}bytes`, data, member, String(Date.now())];
    // send() is typed string[] but passes Uint8Array arguments through as raw bulk strings
    await this.#run("put", (c) => c.send("EVAL", args as string[]));
  }

  async get(key: string, kind: RecordKind): Promise<Uint8Array | null> {
    const name = this.#prefix + this.#member(key, kind);
    const buf = await this.#run("get", (c) => c.getBuffer(name));
    return buf === null ? null : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  async delete(key: string): Promise<void> {
    const [m, k] = [this.#member(key, "meta"), this.#member(key, "kv")];
    const p = this.#prefix;
    await this.#run("delete", (c) => c.send("EVAL", [DELETE, "4", p + m, p + k, `${p}index`, `${p}bytes`, m, k]));
  }

  async list(): Promise<StoredRecord[]> {
    const p = this.#prefix;
    const [scored, sizes] = await this.#run("list", (c) =>
      Promise.all([c.send("ZRANGE", [`${p}index`, "0", "-1", "WITHSCORES"]), c.send("HGETALL", [`${p}bytes`])]),
    );
    // RESP3 answers [[member, score], ...]; RESP2 a flat [member, score, ...]
    const pairs: [string, unknown][] = [];
    const flat = scored as unknown[];
    if (flat.length > 0 && Array.isArray(flat[0])) for (const e of flat as [string, unknown][]) pairs.push(e);
    else for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), flat[i + 1]]);
    const bytes = (sizes ?? {}) as Record<string, string>;
    const out: StoredRecord[] = [];
    for (const [member, score] of pairs) {
      const m = /^([0-9a-f]{16,128}):(meta|kv)$/.exec(member);
      const size = bytes[member];
      if (!m || size === undefined) continue; // deleted between the two reads, or not ours
      out.push({ key: m[1], kind: m[2] as RecordKind, bytes: Number(size), lastUsed: Number(score) });
    }
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client?.close();
    this.#client = null;
    this.#connecting = null;
  }
}
