// Stored responses (Responses API, store: true): the response object, its input items and the
// conversation so far, by response id. They live where sessions live, so they last as the sessions
// do: SESSION_DIR/responses (a restart keeps them), Redis when SESSION_STORE is a redis:// URL (every
// replica sees them), memory when it is "off"; and they expire after SESSION_TTL_S idle, as sessions
// do. Memory and the directory keep at most RESPONSES_STORE_BYTES, the least recently used dropped first.
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { readFile, rename, rm, utimes, writeFile } from "node:fs/promises";
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
  if (s.store === "off") return new MemoryResponses(new UseOrder(ttlMs, s.responsesBytes));
  if (s.store === "dir") return new DirectoryResponses(join(s.dir, "responses"), new UseOrder(ttlMs, s.responsesBytes));
  return new RedisResponses(new RedisConnection(s.store.redis, s.storeTimeoutS * 1000), ttlMs);
}

/**
 * Keys by last use, least recent first (a Map keeps insertion order: a use re-inserts), with their
 * sizes. What has been idle past the TTL, and the least recently used past the byte cap, is
 * dropped on each write.
 */
export class UseOrder {
  readonly #used = new Map<string, { at: number; bytes: number }>();
  #bytes = 0;
  constructor(private readonly ttlMs: number, private readonly maxBytes: number) {}

  /** the key was written (with its size) or read now (`at`: when, for a record found on disk) */
  use(key: string, bytes?: number, at = Date.now()): void {
    const old = this.#used.get(key);
    this.#used.delete(key);
    const size = bytes ?? old?.bytes ?? 0;
    this.#bytes += size - (old?.bytes ?? 0);
    this.#used.set(key, { at, bytes: size });
  }

  /** whether the key is past its TTL (unknown keys are not) */
  expired(key: string, now = Date.now()): boolean {
    const e = this.#used.get(key);
    return e !== undefined && this.ttlMs > 0 && now - e.at > this.ttlMs;
  }

  forget(key: string): boolean {
    const e = this.#used.get(key);
    if (e) this.#bytes -= e.bytes;
    return this.#used.delete(key);
  }

  /** The keys to drop now: idle past the TTL, then the least recently used past the byte cap. */
  trim(now = Date.now()): string[] {
    const out: string[] = [];
    for (const key of this.#used.keys()) {
      if (!(this.expired(key, now) || (this.maxBytes > 0 && this.#bytes > this.maxBytes))) break;
      out.push(key);
      this.forget(key);
    }
    return out;
  }

  get size(): number {
    return this.#used.size;
  }

  get bytes(): number {
    return this.#bytes;
  }
}

class MemoryResponses implements ResponseStore {
  readonly #map = new Map<string, ResponseRecord>();
  constructor(private readonly order: UseOrder) {}
  async put(rec: ResponseRecord) {
    this.#map.set(rec.id, rec);
    this.order.use(rec.id, JSON.stringify(rec).length);
    for (const id of this.order.trim()) this.#map.delete(id);
  }
  async get(id: string) {
    if (this.order.expired(id)) return (await this.delete(id), null);
    const rec = this.#map.get(id) ?? null;
    if (rec) this.order.use(id);
    return rec;
  }
  async delete(id: string) {
    this.order.forget(id);
    return this.#map.delete(id);
  }
  close() {}
}

/** One JSON file per response; this process owns the directory, so its use order is kept here (from the files' times at start). */
class DirectoryResponses implements ResponseStore {
  constructor(private readonly dir: string, private readonly order: UseOrder) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    const stats = files.map((f) => [f, statSync(join(dir, f), { throwIfNoEntry: false })] as const);
    for (const [f, st] of stats.sort((a, b) => (a[1]?.mtimeMs ?? 0) - (b[1]?.mtimeMs ?? 0))) order.use(f, st?.size ?? 0, st?.mtimeMs ?? 0);
  }
  #file = (id: string) => `${sessionKey(`response:${id}`)}.json`;
  async put(rec: ResponseRecord) {
    const path = join(this.dir, this.#file(rec.id));
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const text = JSON.stringify({ rec } satisfies Stamped);
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, path); // readers see the old record or the new one
    this.order.use(this.#file(rec.id), Buffer.byteLength(text));
    await Promise.all(this.order.trim().map((f) => rm(join(this.dir, f), { force: true })));
  }
  async get(id: string) {
    const file = this.#file(id);
    if (this.order.expired(file)) return (await this.delete(id), null);
    let e: Stamped;
    try {
      e = JSON.parse(await readFile(join(this.dir, file), "utf8")) as Stamped;
    } catch {
      return null;
    }
    if (e.rec?.id !== id) return null;
    this.order.use(file);
    const now = new Date();
    await utimes(join(this.dir, file), now, now).catch(() => {}); // its use survives a restart
    return e.rec;
  }
  async delete(id: string) {
    const file = this.#file(id);
    this.order.forget(file);
    const had = await Bun.file(join(this.dir, file)).exists();
    await rm(join(this.dir, file), { force: true });
    return had;
  }
  close() {}
}

/** a record as stored (wrapped: earlier versions stored a write time beside it) */
interface Stamped {
  rec: ResponseRecord;
}

class RedisResponses implements ResponseStore {
  constructor(private readonly redis: RedisConnection, private readonly ttlMs: number) {}
  #key = (id: string) => `llm:response:${sessionKey(id)}`;
  async put(rec: ResponseRecord) {
    const args = [this.#key(rec.id), JSON.stringify({ rec } satisfies Stamped)];
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
