// Session leases on a real redis-server: all or nothing, renewed while held, released only by
// their holder, expiring after a crash, and never in the way while Redis is unreachable. Plus the
// store policies (expiry, byte cap) that replicas sharing one Redis must apply together.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { SessionLeases } from "../src/cluster/leases.ts";
import { RedisStore } from "../src/sessions/redis-store.ts";
import { sessionKey } from "../src/sessions/store.ts";
import { encodeRecord } from "../src/sessions/blob.ts";
import { SessionManager } from "../src/sessions/manager.ts";
import { startTestApp } from "./helpers/app.ts";
import { hasRedis, startRedis, type RedisServer } from "./helpers/redis.ts";

let redis: RedisServer;
beforeAll(async () => {
  if (hasRedis()) redis = await startRedis();
});
afterAll(() => redis?.stop());

const leases = (owner: string, ttlMs = 600) => new SessionLeases(redis.url, { owner, ttlMs, prefix: "test:lease:" });
const meta = (requestId: string) =>
  encodeRecord({ model: "m", llama: "l", shape: "s", kind: "meta", requestId, promptLen: 1, kvTokens: 0, lastUsed: Date.now() }, Int32Array.of(1, 2));

describe.skipIf(!hasRedis())("session leases", () => {
  test("one holder at a time: a batch is all or nothing and names the holder; release frees it", async () => {
    const [a, b] = [leases("ra"), leases("rb")];
    const first = await a.acquire(["x1", "x2"]);
    expect(first.grant).toEqual({ ok: true, stale: [false, false], leased: true });
    expect(a.held).toBe(2);
    const refused = await b.acquire(["y1", "x2"]);
    expect(refused.grant).toEqual({ ok: false, index: 1, holder: "ra" });
    expect((await b.acquire(["y1"])).grant.ok).toBe(true); // y1 was not taken by the refused batch
    a.release(first.token);
    await Bun.sleep(50);
    expect((await b.acquire(["x1", "x2"])).grant.ok).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });

  test("a lease released a moment later is waited for (SESSION_LEASE_WAIT_MS); one still held after the wait is a conflict", async () => {
    const a = leases("wa1");
    const patient = new SessionLeases(redis.url, { owner: "wb1", ttlMs: 600, waitMs: 300, prefix: "test:lease:" });
    const first = await a.acquire(["moment"]);
    setTimeout(() => a.release(first.token), 50); // its response went out; the release is on its way
    const t0 = Date.now();
    expect((await patient.acquire(["moment"])).grant.ok).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40);
    const held = await a.acquire(["held-on"]);
    expect((await patient.acquire(["held-on"])).grant).toEqual({ ok: false, index: 0, holder: "wa1" });
    a.release(held.token);
    await Promise.all([a.close(), patient.close()]);
  });

  test("renewed while held (past its ttl); a crashed holder's lease expires; a leftover of one's own is taken over", async () => {
    const [a, b] = [leases("ra2", 300), leases("rb2", 300)];
    await a.acquire(["renewed"]);
    await Bun.sleep(900); // three ttls: only renewal keeps it
    expect((await b.acquire(["renewed"])).grant.ok).toBe(false);
    // what a replica killed while holding a lease leaves behind: nobody renews it
    const raw = new RedisClient(redis.url);
    await raw.send("SET", [`test:lease:${sessionKey("orphan")}:lease`, "dead 7", "PX", "300"]);
    raw.close();
    expect((await b.acquire(["orphan"])).grant).toEqual({ ok: false, index: 0, holder: "dead" });
    const t0 = Date.now();
    while (!(await b.acquire(["orphan"])).grant.ok) await Bun.sleep(50);
    expect(Date.now() - t0).toBeLessThan(1500);
    // the same process asking again for an id whose release has not landed yet takes it over; another
    // process under the same REPLICA_ID (a misconfiguration) does not
    expect((await a.acquire(["renewed"])).grant.ok).toBe(true);
    const twin = leases("ra2", 300);
    expect((await twin.acquire(["renewed"])).grant).toEqual({ ok: false, index: 0, holder: "ra2" });
    await Promise.all([a.close(), b.close(), twin.close()]);
  });

  test("stale: another replica wrote the session since (the store's owner key), or deleted it", async () => {
    const storeA = new RedisStore(redis.url, { prefix: "test:lease:", owner: "wa" });
    const storeB = new RedisStore(redis.url, { prefix: "test:lease:", owner: "wb" });
    const [a, b] = [leases("wa"), leases("wb")];
    const ask = async (l: SessionLeases, id: string) => {
      const { token, grant } = await l.acquire([id]);
      l.release(token);
      await Bun.sleep(20);
      return grant.ok && grant.stale[0];
    };
    expect(await ask(a, "s1")).toBe(false); // nobody wrote it
    await storeA.put(sessionKey("s1"), "meta", meta("s1"));
    expect(await ask(a, "s1")).toBe(false); // a wrote it last
    expect(await ask(b, "s1")).toBe(true);
    await storeB.put(sessionKey("s1"), "meta", meta("s1"));
    expect(await ask(a, "s1")).toBe(true);
    expect(await ask(b, "s1")).toBe(false);
    expect(await storeA.delete(sessionKey("s1"))).toBe(true);
    expect(await storeA.delete(sessionKey("s1"))).toBe(false);
    expect(await ask(b, "s1")).toBe(true); // deleted: no replica's copy is current
    storeA.close();
    storeB.close();
    await Promise.all([a.close(), b.close()]);
  });

  test("Redis unreachable: requests go on without leases, at once, and it is counted", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    const down = new SessionLeases(`redis://127.0.0.1:${port}`, { owner: "x", ttlMs: 3000 });
    const t0 = performance.now();
    const first = await down.acquire(["a"]);
    const second = await down.acquire(["b"]); // within the back-off: Redis is not asked again
    expect(first.grant).toEqual({ ok: true, stale: [false], leased: false });
    expect(second.grant).toEqual({ ok: true, stale: [false], leased: false });
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(down.counters.unavailable).toBe(2);
    await down.close();
  });
});

// Expiry and the byte cap on a store every replica writes go by every replica's use, not by what
// one replica saw: two SessionManagers on one Redis model two replicas.
describe.skipIf(!hasRedis())("shared store policies", () => {
  const self = { model: "m", llama: "l", shape: "s" };
  const tokens = Int32Array.of(1, 2, 3);
  const replicas = async (prefix: string, limits: { ttlS: number; storeBytes: number }) => {
    const make = async (owner: string) => {
      const m = new SessionManager(new RedisStore(redis.url, { prefix, owner }), self, { ramBytes: 1 << 20, ...limits });
      await m.init();
      return m;
    };
    return [await make("a"), await make("b")] as const;
  };
  const snap = (requestId: string) => ({ requestId, tokens, promptLen: 2, lastUsed: Date.now() });

  test("SESSION_TTL_S: a replica's sweep spares a session another replica used since", async () => {
    const [a, b] = await replicas("test:ttl:", { ttlS: 10, storeBytes: 0 });
    await a.persist(snap("used-again"));
    await a.persist(snap("idle"));
    await Bun.sleep(30);
    await b.persist(snap("used-again")); // b continued it later
    const tB = Date.now();
    // a's clock: both of its own writes are past the TTL, b's is not
    await a.sweep(tB + 10_000 - 5);
    expect(await b.find("idle")).toBeNull();
    expect(await b.find("used-again")).not.toBeNull();
    expect(a.counters.expired).toBe(1);
    a.close();
    b.close();
  });

  test("SESSION_STORE_BYTES: counted over every replica's records, least recently used first", async () => {
    const [a, b] = await replicas("test:cap:", { ttlS: 0, storeBytes: 1 });
    await a.persist(snap("first"));
    await Bun.sleep(5);
    await a.persist(snap("second")); // a alone: over the cap too, so "first" went already
    expect(await a.find("first")).toBeNull();
    await Bun.sleep(5);
    await b.persist(snap("third")); // b never wrote "second", yet it is the oldest of the store
    expect(await b.find("second")).toBeNull();
    expect(await a.find("third")).not.toBeNull();
    expect(b.counters.droppedStore).toBe(1);
    a.close();
    b.close();
  });
});

describe.skipIf(!hasRedis())("leases of a running request (engine client)", () => {
  test("released once the session is written; a held stream's only once its end (or its cut) is known too", async () => {
    const t = await startTestApp({ SESSION_STORE: redis.url, REPLICA_ID: "holder" });
    try {
      const config = { ...t.settings.defaults, do_sample: false, max_new_tokens: 2 };
      const run = async (id: string, hold: boolean) => {
        const done = Promise.withResolvers<void>();
        const ticket = t.engine.submit([{ requestId: id, prompt: "Hello" }], true, config, {
          accepted() {}, text() {}, done: () => done.resolve(), error: (e) => done.reject(new Error(e.message)),
        }, hold);
        await done.promise;
        await Bun.sleep(100); // the engine's "settled" follows the session's writes
        return ticket;
      };
      await run("plain-1", false);
      expect(t.engine.leases!.held).toBe(0);
      const held = await run("held-1", true);
      expect(t.engine.leases!.held).toBe(1); // its client may still be reading: the session may yet be cut
      t.engine.letGo(held);
      expect(t.engine.leases!.held).toBe(0);
      const cut = await run("held-2", true);
      const before = (await t.engine.describe("held-2"))!;
      const length = before.prompt_tokens + before.generated_tokens;
      expect(before.generated_tokens).toBe(2);
      expect(t.engine.leases!.held).toBe(1);
      t.engine.cut("held-2", length - 1, length, cut); // the client had one token of two: written, then released
      await Bun.sleep(100);
      expect(t.engine.leases!.held).toBe(0);
      expect((await t.engine.describe("held-2"))?.generated_tokens).toBe(1);
    } finally {
      await t.close();
    }
  });
});
