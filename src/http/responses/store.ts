// Stored responses (Responses API, store: true): the response object, its input items and the
// conversation so far, by response id. They live where sessions live, so they last as the sessions
// do: SESSION_DIR/responses (a restart keeps them), Redis when SESSION_STORE is a redis:// URL (every
// replica sees them), memory when it is "off"; and they expire after SESSION_TTL_S idle, as sessions do.
import { mkdirSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SessionSettings } from "../../config.ts";
import type { Message } from "../../conversation/types.ts";
import { RedisConnection } from "../../sessions/redis-connection.ts";
import { sessionKey } from "../../sessions/store.ts";

export interface ResponseRecord {
  id: string;
  /** the response object as it was returned */
  response: Record<string, unknown>;
  /** the request's input items, with ids (GET /v1/responses/{id}/input_items) */
  inputItems: Record<string, unknown>[];
  /** the conversation through this response's output (instructions excluded: they are per request) */
  conversation: Message[];
  /** the session (request_id) holding its KV state: the next turn continues it */
  session: string;
}

export interface ResponseStore {
  put(rec: ResponseRecord): Promise<void>;
  get(id: string): Promise<ResponseRecord | null>;
  delete(id: string): Promise<boolean>;
  close(): void;
}

export function openResponseStore(s: SessionSettings): ResponseStore {
  const ttlMs = s.ttlS * 1000;
  if (s.store === "off") return new MemoryResponses(ttlMs);
  if (s.store === "dir") return new DirectoryResponses(join(s.dir, "responses"), ttlMs);
  return new RedisResponses(new RedisConnection(s.store.redis, s.storeTimeoutS * 1000), ttlMs);
}

interface Stamped {
  rec: ResponseRecord;
  /** ms since the epoch of the last use (0 TTL: never expires) */
  used: number;
}

const expired = (used: number, ttlMs: number) => ttlMs > 0 && Date.now() - used > ttlMs;

class MemoryResponses implements ResponseStore {
  readonly #map = new Map<string, Stamped>();
  constructor(private readonly ttlMs: number) {}
  async put(rec: ResponseRecord) {
    this.#map.set(rec.id, { rec, used: Date.now() });
  }
  async get(id: string) {
    const e = this.#map.get(id);
    if (!e || expired(e.used, this.ttlMs)) return (this.#map.delete(id), null);
    e.used = Date.now();
    return e.rec;
  }
  async delete(id: string) {
    return this.#map.delete(id);
  }
  close() {}
}

class DirectoryResponses implements ResponseStore {
  constructor(private readonly dir: string, private readonly ttlMs: number) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  #path = (id: string) => join(this.dir, `${sessionKey(`response:${id}`)}.json`);
  async put(rec: ResponseRecord) {
    const path = this.#path(rec.id);
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, JSON.stringify({ rec, used: Date.now() } satisfies Stamped), { mode: 0o600 });
    await rename(tmp, path); // readers see the old record or the new one
  }
  async get(id: string) {
    let e: Stamped;
    try {
      e = JSON.parse(await readFile(this.#path(id), "utf8")) as Stamped;
    } catch {
      return null;
    }
    if (e.rec?.id !== id) return null;
    if (expired(e.used, this.ttlMs)) return (await this.delete(id), null);
    return e.rec;
  }
  async delete(id: string) {
    const path = this.#path(id);
    const had = await Bun.file(path).exists();
    await rm(path, { force: true });
    return had;
  }
  close() {}
}

class RedisResponses implements ResponseStore {
  constructor(private readonly redis: RedisConnection, private readonly ttlMs: number) {}
  #key = (id: string) => `llm:response:${sessionKey(id)}`;
  async put(rec: ResponseRecord) {
    const args = [this.#key(rec.id), JSON.stringify({ rec, used: Date.now() })];
    await this.redis.run("response put", (c) => c.send("SET", this.ttlMs > 0 ? [...args, "PX", String(this.ttlMs)] : args));
  }
  async get(id: string) {
    const key = this.#key(id);
    const raw = (await this.redis.run("response get", (c) => c.send("GET", [key]))) as string | null;
    if (!raw) return null;
    if (this.ttlMs > 0) void this.redis.run("response touch", (c) => c.send("PEXPIRE", [key, String(this.ttlMs)])).catch(() => {});
    const e = JSON.parse(raw) as Stamped;
    return e.rec?.id === id ? e.rec : null;
  }
  async delete(id: string) {
    return ((await this.redis.run("response delete", (c) => c.send("DEL", [this.#key(id)]))) as number) > 0;
  }
  close() {
    this.redis.close();
  }
}
