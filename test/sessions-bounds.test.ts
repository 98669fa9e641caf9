// Sessions under stress on the real engine: a full disk, Redis going away, a stream cut by its
// client, a request withdrawn while queued, the store's byte cap, TTL expiry and the listing.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestApp, withTestApp, uid, waitReleased } from "./helpers/app.ts";
import { readThenHangUp } from "./helpers/raw-http.ts";
import { gen, get, health, PROMPT, SMALL, until } from "./helpers/sessions.ts";
import { hasRedis, startRedis } from "./helpers/redis.ts";

setDefaultTimeout(120_000);

// a tiny tmpfs: root can mount one (CI runs as root); elsewhere the test is skipped
const tmpfs = mkdtempSync(join(tmpdir(), "sess-full-"));
const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", tmpfs]).status === 0;

describe("degraded stores", () => {
  test.skipIf(!mounted)("a full disk degrades to RAM only: generation goes on, /health says degraded, nothing is wrong", async () => {
    const dir = join(tmpfs, "s");
    mkdirSync(dir);
    const t = await startTestApp({ ...SMALL, SESSION_RAM_BYTES: "0", SESSION_DIR: dir });
    try {
      const id = uid();
      const a = await gen(t, id, PROMPT, 12); // its meta fits; its KV blob (~100 kB) cannot
      await gen(t, uid(), "a b c", 4);
      await gen(t, uid(), "d e f", 4);
      await until("degraded", async () => (await health(t)).status === "degraded");
      expect((await health(t)).degraded).toContain("ENOSPC");
      const s = (await t.engine.stats()).sessions;
      expect(s.storeErrors).toBeGreaterThan(0);
      expect(s.droppedRam).toBeGreaterThan(0);
      const b = await gen(t, id, "", 12);
      expect(b.session).toBe("recomputed");
      expect(a.text + b.text).toBe((await gen(t, uid(), PROMPT, 24)).text);
    } finally {
      await t.close();
      spawnSync("umount", [tmpfs]);
      rmSync(tmpfs, { recursive: true, force: true });
    }
  });

  test.skipIf(!hasRedis())("a frozen Redis costs one timeout, not one per request: degraded, new requests are served at once", async () => {
    const redis = await startRedis();
    const t = await startTestApp({ SESSION_STORE: redis.url });
    try {
      await gen(t, uid(), "warm", 2);
      process.kill(redis.pid, "SIGSTOP");
      const first = Date.now();
      await gen(t, uid(), "The sea was calm", 2); // its lookup times out (2 s): the store is degraded
      expect(Date.now() - first).toBeLessThan(5000);
      await until("degraded", async () => (await health(t)).status === "degraded");
      const t0 = Date.now();
      for (let i = 0; i < 3; i++) await gen(t, uid(), "def main():", 2);
      expect(Date.now() - t0).toBeLessThan(1500); // no store lookup on the request path meanwhile
      process.kill(redis.pid, "SIGCONT");
      await gen(t, uid(), "hello", 2); // its meta write heals the store
      await until("healed", async () => (await health(t)).status === "ok");
    } finally {
      process.kill(redis.pid, "SIGCONT");
      await t.close();
      await redis.stop();
    }
  });

  test.skipIf(!hasRedis())("Redis going away degrades to RAM only; it heals when Redis is back", async () => {
    const redis = await startRedis();
    // a store timeout far beyond the bound below: an answer that waited for one could not pass it,
    // while a busy machine still has room (6 s seen under a CUDA build)
    const t = await startTestApp({ ...SMALL, SESSION_STORE: redis.url, SESSION_STORE_TIMEOUT_S: "60" });
    let back: Awaited<ReturnType<typeof startRedis>> | null = null;
    try {
      const id = uid();
      const a = await gen(t, id, PROMPT, 8);
      redis.kill();
      const started = Date.now();
      const b = await gen(t, id, "", 8); // its meta write fails: the response still comes
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(b.session).toBe("continued");
      expect(a.text + b.text).toBe((await gen(t, uid(), PROMPT, 16)).text);
      expect((await health(t)).status).toBe("degraded");
      back = await startRedis({ port: redis.port, dir: redis.dir });
      await gen(t, uid(), "hello", 2);
      await until("healed", async () => (await health(t)).status === "ok");
    } finally {
      await t.close();
      await back?.stop();
      await redis.stop().catch(() => {});
    }
  });
});

describe("streams and sessions agree", () => {
  test("a client that hangs up mid-stream: the session ends at the last token sent to it, and the continuation has no gap", async () => {
    const t = await startTestApp();
    const server = Bun.serve({ port: 0, fetch: (req) => t.app.handle(req), idleTimeout: 0 });
    try {
      const id = uid();
      const body = { request_id: id, prompt: PROMPT, generation_config: { do_sample: false, max_new_tokens: 300 } };
      const got = await readThenHangUp(server.port!, "/api/generate-one", body, 40);
      expect(got.status).toBe(200);
      expect(await waitReleased(t, id)).toBe(true);
      const info = (await (await get(t, `/api/cache/${id}`)).json()) as { generated_tokens: number };
      expect(info.generated_tokens).toBeLessThan(300);
      // exactly what the client received is in the session...
      expect(got.text).toBe(await t.generate(uid(), PROMPT, { max_new_tokens: info.generated_tokens }));
      // ...so received + continuation equals one uninterrupted run
      const more = await t.generate(id, "", { max_new_tokens: 10 });
      expect(got.text + more).toBe(await t.generate(uid(), PROMPT, { max_new_tokens: info.generated_tokens + 10 }));
    } finally {
      server.stop(true);
      await t.close();
    }
  });

  test("a request withdrawn while queued leaves no session; a queued continuation is left as it was", async () => {
    const t = await startTestApp({ PARALLEL: "1", CACHE_SEQUENCES: "2" });
    const server = Bun.serve({ port: 0, fetch: (req) => t.app.handle(req), idleTimeout: 0 });
    try {
      const old = uid();
      const first = await gen(t, old, PROMPT, 6);
      const busy = gen(t, uid(), PROMPT, 150); // holds the only slot
      await Bun.sleep(30);
      const post = (id: string) => {
        const ac = new AbortController();
        const p = fetch(`http://127.0.0.1:${server.port}/api/generate-one`, { method: "POST", signal: ac.signal, body: JSON.stringify({ request_id: id, prompt: "queued", stream_response: false }) }).catch(() => null);
        return { ac, p };
      };
      const fresh = uid();
      const q1 = post(fresh), q2 = post(old);
      await Bun.sleep(50);
      expect((await t.engine.stats()).queued).toBe(2);
      q1.ac.abort();
      q2.ac.abort();
      await Promise.all([q1.p, q2.p]);
      expect(await waitReleased(t, fresh)).toBe(true);
      expect(await waitReleased(t, old)).toBe(true);
      expect((await get(t, `/api/cache/${fresh}`)).status).toBe(404);
      expect(((await (await get(t, `/api/cache/${old}`)).json()) as { generated_tokens: number }).generated_tokens).toBe(6);
      await busy;
      expect(first.text + (await gen(t, old, "", 6)).text).toBe((await gen(t, uid(), PROMPT, 12)).text);
    } finally {
      server.stop(true);
      await t.close();
    }
  });
});

describe("bounds, expiry and listing", () => {
  test("SESSION_STORE_BYTES drops the least recently used sessions from the store", async () => {
    await withTestApp({ SESSION_STORE_BYTES: "2000" }, async (t) => {
      for (let i = 0; i < 6; i++) await gen(t, uid("cap"), PROMPT, 40); // each meta record is ~550 bytes
      const s = (await t.engine.stats()).sessions;
      expect(s.storeBytes).toBeLessThanOrEqual(2000);
      expect(s.droppedStore).toBeGreaterThan(0);
    });
  });

  test("SESSION_TTL_S: an idle session expires from every tier", async () => {
    await withTestApp({ SESSION_TTL_S: "1" }, async (t) => {
      const id = uid();
      await gen(t, id, PROMPT, 4);
      expect((await get(t, `/api/cache/${id}`)).status).toBe(200);
      await until("expiry", async () => (await get(t, `/api/cache/${id}`)).status === 404, 5000);
      expect((await t.engine.stats()).sessions.expired).toBeGreaterThan(0);
      expect((await gen(t, id, "The sea was calm", 4)).session).toBe("new");
    });
  });

  test("GET /api/cache lists sessions in request_id order, page by page; DELETE removes one from every tier", async () => {
    await withTestApp({ ...SMALL, SESSION_RAM_BYTES: "0" }, async (t) => {
      const base = uid("list");
      const ids = ["a", "b", "c"].map((x) => `${base}-${x}`);
      for (const id of ids) await gen(t, id, PROMPT, 4);
      const page = async (after: string) => (await (await get(t, `/api/cache?limit=2&after=${encodeURIComponent(after)}`)).json()) as { sessions: { request_id: string; tier: string }[]; next: string | null };
      const p1 = await page(base);
      expect(p1.sessions.map((s) => s.request_id)).toEqual(ids.slice(0, 2));
      const p2 = await page(p1.next!);
      expect(p2.sessions[0]!.request_id).toBe(ids[2]);
      expect((await get(t, "/api/cache?limit=0")).status).toBe(422);
      await until("a's state in the store", async () => p1.sessions[0]!.tier === "store" || (await page(base)).sessions[0]!.tier === "store");
      const del = await t.app.handle(new Request(`http://local/api/cache/${ids[0]}`, { method: "DELETE" }));
      expect(del.status).toBe(200);
      expect((await get(t, `/api/cache/${ids[0]}`)).status).toBe(404);
      expect((await page(base)).sessions.map((s) => s.request_id)).toEqual(ids.slice(1, 3));
    });
  });
});
