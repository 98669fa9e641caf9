// The persistent session tier in Redis (Bun's built-in client): one binary string per record plus an
// index for list(): a sorted set of `<key>:<kind>` scored by last use and a hash of byte lengths.
// Writes go through Lua scripts, so value and index change together; every call has a deadline.
// With an `owner` (the replica's name), a meta write also records who wrote the session last, and
// a delete leaves a tombstone there: replicas holding an older copy of it learn so when they lease
// it (src/cluster/leases.ts).
import { checkKey } from "./dir-store.ts";
import { RedisConnection, redactUrl } from "./redis-connection.ts";
import type { RecordKind, SessionStore, StoredRecord } from "./store.ts";

export { redactUrl };

export interface RedisStoreOptions {
  /** prefix of every Redis key this store touches (default "llm:sess:") */
  prefix?: string;
  /** deadline of one operation, connecting included (default 2000 ms) */
  timeoutMs?: number;
  /** this replica's name, written beside each meta record it writes */
  owner?: string;
}

/** The owner value a delete leaves (kept a week): no replica's older copy of the session is current. */
export const DELETED_OWNER = "!deleted";
const TOMBSTONE_MS = 7 * 24 * 3600 * 1000;

// Every script keeps `total` (the bytes of every record) with the byte-length hash.
// KEYS: value, index, bytes, owner, total. ARGV: data, member, now (ms), owner ("" for none).
const PUT = `if redis.call('EXISTS', KEYS[5]) == 0 then
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do sum = sum + tonumber(v) end
  redis.call('SET', KEYS[5], sum)
end
local old = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], string.len(ARGV[1]))
if ARGV[4] ~= '' then redis.call('SET', KEYS[4], ARGV[4]) end
return redis.call('INCRBY', KEYS[5], string.len(ARGV[1]) - old)`;
// KEYS: meta value, kv value, index, bytes, owner, total. ARGV: meta member, kv member, tombstone,
// its lifetime (ms), cutoff (ms; "" for none: a record used at or after it keeps the key).
const DELETE = `if ARGV[5] ~= '' then
  for _, m in ipairs({ARGV[1], ARGV[2]}) do
    local used = redis.call('ZSCORE', KEYS[3], m)
    if used and tonumber(used) >= tonumber(ARGV[5]) then return -1 end
  end
end
local freed = 0
for _, m in ipairs({ARGV[1], ARGV[2]}) do freed = freed + tonumber(redis.call('HGET', KEYS[4], m) or '0') end
local n = redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('DECRBY', KEYS[6], freed) end
if n > 0 then redis.call('SET', KEYS[5], ARGV[3], 'PX', ARGV[4]) end
return n`;

/** A sorted-set answer WITHSCORES: RESP3 gives [[member, score], ...], RESP2 a flat [member, score, ...]. */
function scoredPairs(flat: unknown[]): [string, unknown][] {
  const pairs: [string, unknown][] = [];
  if (flat.length > 0 && Array.isArray(flat[0])) for (const e of flat as [string, unknown][]) pairs.push([String(e[0]), e[1]]);
  else for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), flat[i + 1]]);
  return pairs;
}

export class RedisStore implements SessionStore {
  readonly description: string;
  /** replicas share it: a record this process never wrote may exist */
  readonly shared = true;
  readonly #redis: RedisConnection;
  readonly #prefix: string;
  readonly #owner: string;

  constructor(url: string, opts: RedisStoreOptions = {}) {
    this.#redis = new RedisConnection(url, opts.timeoutMs ?? 2000);
    this.#prefix = opts.prefix ?? "llm:sess:";
    this.#owner = opts.owner ?? "";
    this.description = this.#redis.description;
  }

  #member(key: string, kind: RecordKind): string {
    checkKey(key);
    return `${key}:${kind}`;
  }

  async put(key: string, kind: RecordKind, data: Uint8Array): Promise<number> {
    const member = this.#member(key, kind);
    const p = this.#prefix;
    const owner = kind === "meta" ? this.#owner : "";
    const keys = [p + member, `${p}index`, `${p}bytes`, `${p}${key}:owner`, `${p}total`];
    return Number(await this.#redis.eval("put", PUT, keys, [data, member, String(Date.now()), owner]));
  }

  async get(key: string, kind: RecordKind): Promise<Uint8Array | null> {
    const name = this.#prefix + this.#member(key, kind);
    const buf = await this.#redis.run("get", (c) => c.getBuffer(name));
    return buf === null ? null : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#delete(key, "")) > 0;
  }

  async deleteIfIdle(key: string, cutoff: number): Promise<boolean> {
    return (await this.#delete(key, String(cutoff))) >= 0;
  }

  async #delete(key: string, cutoff: string): Promise<number> {
    const [m, k] = [this.#member(key, "meta"), this.#member(key, "kv")];
    const p = this.#prefix;
    const keys = [p + m, p + k, `${p}index`, `${p}bytes`, `${p}${key}:owner`, `${p}total`];
    return Number(await this.#redis.eval("delete", DELETE, keys, [m, k, DELETED_OWNER, String(TOMBSTONE_MS), cutoff]));
  }

  async oldest(limit: number, before?: number): Promise<{ key: string; lastUsed: number; bytes: number }[]> {
    const p = this.#prefix;
    const max = before === undefined ? "+inf" : `(${before}`;
    const flat = (await this.#redis.run("oldest", (c) => c.send("ZRANGEBYSCORE", [`${p}index`, "-inf", max, "WITHSCORES", "LIMIT", "0", String(limit)]))) as unknown[];
    const byKey = new Map<string, { key: string; lastUsed: number; bytes: number }>();
    const members: string[] = [];
    for (const [member, score] of scoredPairs(flat)) {
      const m = /^([0-9a-f]{16,128}):(meta|kv)$/.exec(member);
      if (!m) continue;
      members.push(member);
      const e = byKey.get(m[1]!) ?? { key: m[1]!, lastUsed: Number(score), bytes: 0 };
      byKey.set(e.key, e);
    }
    if (members.length === 0) return [];
    const sizes = (await this.#redis.run("oldest", (c) => c.send("HMGET", [`${p}bytes`, ...members]))) as (string | null)[];
    members.forEach((member, i) => (byKey.get(member.slice(0, member.lastIndexOf(":")))!.bytes += Number(sizes[i] ?? 0)));
    return [...byKey.values()];
  }

  async list(): Promise<StoredRecord[]> {
    const p = this.#prefix;
    const [scored, sizes] = await this.#redis.run("list", (c) =>
      Promise.all([c.send("ZRANGE", [`${p}index`, "0", "-1", "WITHSCORES"]), c.send("HGETALL", [`${p}bytes`])]),
    );
    const pairs = scoredPairs(scored as unknown[]);
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
    this.#redis.close();
  }
}
