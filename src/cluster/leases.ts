// Session leases: while a request generates, its replica holds a lease on each of its request_ids
// in Redis (SET NX with an expiry, renewed while it runs, released at the end), so a second replica
// asked to continue the same id meanwhile answers 409, as one server does. A crashed replica's
// leases expire within SESSION_LEASE_TTL_S. Runs on the HTTP thread, beside the engine client.
//
// A lease also says whether this replica's own copy of a session may be stale: the session store
// records which replica wrote a session last (RedisStore's owner key). Another name there means
// another replica continued (or deleted) the session since; the engine then forgets its local
// copy and loads the session from the store.
import { logEvent } from "../log.ts";
import { RedisConnection } from "../sessions/redis-connection.ts";
import { sessionKey } from "../sessions/store.ts";

export interface LeaseOptions {
  /** this replica's name (REPLICA_ID) */
  owner: string;
  ttlMs: number;
  /**
   * how long a lease held elsewhere is waited for before the answer is 409 (SESSION_LEASE_WAIT_MS):
   * a client that got its response from one replica and goes straight to another would otherwise
   * meet the lease whose release is still on its way
   */
  waitMs?: number;
  /** the session store's key prefix (default "llm:sess:") */
  prefix?: string;
}

export type LeaseGrant =
  /** `stale[i]`: another replica wrote items[i]'s session since this one did; `leased`: false while Redis is unreachable */
  | { ok: true; stale: boolean[]; leased: boolean }
  /** ids[index] is generating on replica `holder` */
  | { ok: false; index: number; holder: string };

// KEYS: lease, owner pairs. ARGV: lease value, ttl ms, owner name, this process's lease prefix.
// All or nothing: nothing is taken when any id is leased by someone else. A lease of this very
// process that the caller asks for again is a leftover (its release is on its way): taken over.
// (SET NX PX, except for that takeover.)
const ACQUIRE = `local mine = ARGV[4]
for i = 1, #KEYS, 2 do
  local cur = redis.call('GET', KEYS[i])
  if cur and string.sub(cur, 1, #mine) ~= mine then return {0, (i + 1) / 2, cur} end
end
local stale = {}
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  local o = redis.call('GET', KEYS[i + 1])
  stale[#stale + 1] = (o and o ~= ARGV[3]) and 1 or 0
end
return {1, stale}`;
// KEYS: leases. ARGV: their values, then the ttl. Returns the positions (1-based) no longer ours.
const RENEW = `local lost = {}
local n = #KEYS
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[i] then redis.call('PEXPIRE', KEYS[i], ARGV[n + 1]) else lost[#lost + 1] = i end
end
return lost`;
// KEYS: leases. ARGV: their values. Deletes only what is still ours.
const RELEASE = `for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then redis.call('DEL', KEYS[i]) end
end
return 1`;

interface Held {
  ids: string[];
  keys: string[];
  value: string;
}

export class SessionLeases {
  readonly owner: string;
  readonly #redis: RedisConnection;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #waitMs: number;
  /** by lease token (one per request) */
  readonly #held = new Map<string, Held>();
  /** lease values are "<owner> <boot>:<n>": another process under the same REPLICA_ID is someone else */
  readonly #boot = crypto.randomUUID().slice(0, 8);
  #timer: Timer | null = null;
  #serial = 0;
  /** Redis unreachable until then: requests go on without leases, no waiting on each */
  #downUntil = 0;
  readonly counters = { acquired: 0, conflicts: 0, lost: 0, unavailable: 0 };

  constructor(url: string, opts: LeaseOptions) {
    this.owner = opts.owner;
    this.#ttlMs = opts.ttlMs;
    this.#waitMs = opts.waitMs ?? 0;
    this.#prefix = opts.prefix ?? "llm:sess:";
    // a lease call waits at most a third of the lease: a frozen Redis never holds a request long
    this.#redis = new RedisConnection(url, Math.max(200, Math.floor(opts.ttlMs / 3)));
  }

  get held(): number {
    let n = 0;
    for (const h of this.#held.values()) n += h.ids.length;
    return n;
  }

  #key(id: string, what: "lease" | "owner"): string {
    return `${this.#prefix}${sessionKey(id)}:${what}`;
  }

  /** Leases every id for one request; returns its token (for release) with the grant. */
  async acquire(ids: string[]): Promise<{ token: string; grant: LeaseGrant }> {
    const token = `${++this.#serial}`;
    const none = { token, grant: { ok: true, stale: ids.map(() => false), leased: false } as LeaseGrant };
    if (ids.length === 0 || Date.now() < this.#downUntil) {
      if (ids.length > 0) this.counters.unavailable++;
      return none;
    }
    const mine = `${this.owner} ${this.#boot}:`;
    const value = mine + token;
    const keys = ids.map((id) => this.#key(id, "lease"));
    const pairs = ids.flatMap((id, i) => [keys[i]!, this.#key(id, "owner")]);
    const giveUp = Date.now() + this.#waitMs;
    let answer: [number, number | number[], string?];
    for (;;) {
      try {
        answer = (await this.#redis.eval("lease", ACQUIRE, pairs, [value, String(this.#ttlMs), this.owner, mine])) as typeof answer;
      } catch (err) {
        this.#down(err);
        this.counters.unavailable++;
        return none;
      }
      if (answer[0] === 1 || Date.now() >= giveUp) break;
      await Bun.sleep(10);
    }
    const [ok, second, holder] = answer;
    if (ok !== 1) {
      this.counters.conflicts++;
      return { token, grant: { ok: false, index: (second as number) - 1, holder: String(holder ?? "").split(" ")[0] || "another replica" } };
    }
    this.counters.acquired++;
    this.#held.set(token, { ids, keys, value });
    this.#schedule();
    return { token, grant: { ok: true, stale: (second as number[]).map((s) => s === 1), leased: true } };
  }

  /** Gives a request's leases back (best effort: an unreachable Redis lets them expire). */
  release(token: string): void {
    const h = this.#held.get(token);
    if (!h) return;
    this.#held.delete(token);
    void this.#redis.eval("release", RELEASE, h.keys, h.ids.map(() => h.value)).catch((err) => this.#down(err));
    if (this.#held.size === 0) this.#stop();
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref?.();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One call renews every lease held; one that is no longer ours (it expired while Redis was away) is logged. */
  async #renew(): Promise<void> {
    const held = [...this.#held.values()];
    const keys = held.flatMap((h) => h.keys);
    if (keys.length === 0) return;
    const values = held.flatMap((h) => h.ids.map(() => h.value));
    let lost: number[];
    try {
      lost = (await this.#redis.eval("renew", RENEW, keys, [...values, String(this.#ttlMs)])) as number[];
    } catch (err) {
      return this.#down(err);
    }
    const owners = held.flatMap((h) => h.ids.map((id) => ({ h, id })));
    for (const i of lost ?? []) {
      const { h, id } = owners[i - 1]!;
      this.counters.lost++;
      logEvent("warn", "lease_lost", { request_id: id, reason: "it expired (Redis unreachable for longer than SESSION_LEASE_TTL_S) and may be held by another replica" });
      // not renewed again (nor released: it may be someone else's now)
      const at = h.ids.indexOf(id);
      if (at >= 0) (h.ids.splice(at, 1), h.keys.splice(at, 1));
    }
  }

  #down(err: unknown): void {
    if (Date.now() >= this.#downUntil) {
      logEvent("warn", "lease_unavailable", { store: this.#redis.description, reason: (err as Error)?.message ?? String(err), effect: "requests go on without leases until Redis answers" });
    }
    this.#downUntil = Date.now() + this.#ttlMs;
  }

  /** Releases everything held and closes the connection (shutdown). */
  async close(): Promise<void> {
    this.#stop();
    const held = [...this.#held.values()];
    this.#held.clear();
    const keys = held.flatMap((h) => h.keys);
    if (keys.length > 0) await this.#redis.eval("release", RELEASE, keys, held.flatMap((h) => h.ids.map(() => h.value))).catch(() => {});
    this.#redis.close();
  }
}
