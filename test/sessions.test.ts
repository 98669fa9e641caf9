// Sessions below the KV cache on the real engine: restore parity from RAM, the directory and
// Redis, beams, and corrupt, truncated and foreign blobs (sessions-bounds.test.ts: the rest).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeRecord, encodeRecord } from "../src/sessions/blob.ts";
import { sessionKey } from "../src/sessions/store.ts";
import { startTestApp, withTestApp, uid, type TestApp } from "./helpers/app.ts";
import { cacheInfo, gen, health, PROMPT, SMALL, until } from "./helpers/sessions.ts";
import { hasRedis, startRedis } from "./helpers/redis.ts";

setDefaultTimeout(120_000);

/** 12 tokens, pushed out of the KV cache by two other sessions, then 12 more: equal to 24 in one go. */
async function restoreParity(t: TestApp, expected: "restored" | "recomputed", waitTier?: string): Promise<void> {
  const id = uid("keep");
  const a = await gen(t, id, PROMPT, 12);
  expect(a.session).toBe("new");
  await gen(t, uid("other"), "The sea was calm", 8);
  await gen(t, uid("other"), "def main():", 8);
  const info = await cacheInfo(t, id);
  expect(info!.state).toBe("evicted");
  if (waitTier) await until(`tier ${waitTier}`, async () => (await cacheInfo(t, id))?.tier === waitTier);
  const b = await gen(t, id, "", 12); // the prompt may be empty when the session exists
  expect(b.session).toBe(expected);
  expect(a.text + b.text).toBe((await gen(t, uid("whole"), PROMPT, 24)).text);
}

describe("a session's next request, from each tier", () => {
  test("KV cache: continued, with an empty prompt; a new id with an empty prompt is 422", async () => {
    await withTestApp({}, async (t) => {
      const id = uid();
      const a = await gen(t, id, PROMPT, 8);
      const b = await gen(t, id, "", 8);
      expect([a.session, b.session]).toEqual(["new", "continued"]);
      expect(a.text + b.text).toBe((await gen(t, uid(), PROMPT, 16)).text);
      const r = await t.post("/api/generate-one", { request_id: uid(), prompt: "" });
      expect(r.status).toBe(422);
      expect(((await r.json()) as { error: { field: string } }).error.field).toBe("prompt");
      const batch = await t.post("/api/generate-batch", { prompts: [{ request_id: id, prompt: "" }, { request_id: uid(), prompt: "Hi" }], generation_config: { max_new_tokens: 2 } });
      expect(((await batch.json()) as { session: string }[]).map((i) => i.session)).toEqual(["continued", "new"]);
    });
  });

  test("host RAM: the evicted state is restored, not decoded again", async () => {
    await withTestApp(SMALL, async (t) => {
      await restoreParity(t, "restored");
      const s = (await t.engine.stats()).sessions;
      expect(s.restoredFromRam).toBe(1);
      expect(s.recomputed).toBe(0);
    });
  });

  test("host RAM with one shared KV buffer (KV_UNIFIED): restored too", async () => {
    await withTestApp({ ...SMALL, KV_UNIFIED: "true", KV_CELLS: "512" }, async (t) => {
      await restoreParity(t, "restored");
      expect((await t.engine.stats()).sessions.restoredFromRam).toBe(1);
    });
  });

  test("directory: with no RAM budget the state goes to SESSION_DIR (files named by hash, dir 0700) and comes back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sess-dir-"));
    const t = await startTestApp({ ...SMALL, SESSION_RAM_BYTES: "0", SESSION_DIR: join(dir, "s") });
    try {
      await restoreParity(t, "restored", "store");
      expect((await t.engine.stats()).sessions.restoredFromStore).toBe(1);
      expect(statSync(join(dir, "s")).mode & 0o777).toBe(0o700);
      // beside the session records, the stored responses' directory (src/http/responses/store.ts)
      const files = readdirSync(join(dir, "s")).filter((f) => f !== "responses");
      expect(files.length).toBeGreaterThan(0);
      expect(files.every((f) => /^[0-9a-f]{64}\.(meta|kv)$/.test(f))).toBe(true);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(!hasRedis())("Redis: the state goes to Redis and comes back", async () => {
    const redis = await startRedis();
    const t = await startTestApp({ ...SMALL, SESSION_RAM_BYTES: "0", SESSION_STORE: redis.url });
    try {
      await restoreParity(t, "restored", "store");
      expect((await t.engine.stats()).sessions.restoredFromStore).toBe(1);
    } finally {
      await t.close();
      await redis.stop();
    }
  });

  test("beam search: the winner is what is saved and restored", async () => {
    await withTestApp(SMALL, async (t) => {
      const beam = { do_sample: false, num_beams: 2, max_new_tokens: 8 };
      const id = uid(), ref = uid();
      const body = (rid: string, prompt: string, cfg: object) => ({ request_id: rid, prompt, stream_response: false, generation_config: cfg });
      const a = await (await t.post("/api/generate-one", body(id, PROMPT, beam))).text();
      await gen(t, uid(), "x y z", 4);
      await gen(t, uid(), "1 2 3", 4); // id evicted to RAM
      const b = await gen(t, id, "", 8);
      expect(b.session).toBe("restored");
      expect(await (await t.post("/api/generate-one", body(ref, PROMPT, beam))).text()).toBe(a);
      expect((await gen(t, ref, "", 8)).text).toBe(b.text); // ref continued without eviction
    });
  });
});

describe("bad blobs and broken stores never give wrong text", () => {
  test("a corrupt, a truncated and a foreign KV blob are skipped: the tokens are decoded again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sess-bad-"));
    const t = await startTestApp({ ...SMALL, SESSION_RAM_BYTES: "0", SESSION_DIR: dir });
    try {
      const ids = [uid("corrupt"), uid("trunc"), uid("foreign")];
      const firsts: string[] = [];
      for (const id of ids) firsts.push((await gen(t, id, PROMPT, 10)).text);
      await gen(t, uid(), "a b c", 4);
      await gen(t, uid(), "d e f", 4);
      const kv = (id: string) => join(dir, `${sessionKey(id)}.kv`);
      await until("the blobs to reach the directory", async () => ids.every((id) => readdirSync(dir).includes(`${sessionKey(id)}.kv`)));
      const corrupt = readFileSync(kv(ids[0]!));
      writeFileSync(kv(ids[2]!), corrupt); // a valid blob, but another session's
      corrupt[corrupt.length >> 1] ^= 0xff;
      writeFileSync(kv(ids[0]!), corrupt);
      writeFileSync(kv(ids[1]!), readFileSync(kv(ids[1]!)).subarray(0, 100));
      for (let i = 0; i < ids.length; i++) {
        const more = await gen(t, ids[i]!, "", 10);
        expect(more.session).toBe("recomputed");
        expect(firsts[i]! + more.text).toBe((await gen(t, uid(), PROMPT, 20)).text);
      }
      expect((await t.engine.stats()).sessions.rejectedBlobs).toBeGreaterThanOrEqual(3);
      expect((await health(t)).status).toBe("ok");
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a state llama.cpp does not restore", () => {
  test("a well-formed blob whose state holds no cells is decoded again, and x-session says recomputed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sess-empty-"));
    const t = await startTestApp({ ...SMALL, SESSION_RAM_BYTES: "0", SESSION_DIR: dir });
    try {
      const id = uid();
      const a = await gen(t, id, PROMPT, 10);
      await gen(t, uid(), "a b c", 4);
      await gen(t, uid(), "d e f", 4);
      const path = join(dir, `${sessionKey(id)}.kv`);
      await until("the blob", async () => readdirSync(dir).includes(`${sessionKey(id)}.kv`));
      const rec = decodeRecord(readFileSync(path));
      // same header, same tokens, valid checksum; the state says "0 cells"
      writeFileSync(path, encodeRecord(rec.header, rec.tokens, new Uint8Array(rec.payload.length)));
      const b = await gen(t, id, "", 10);
      expect(b.session).toBe("recomputed");
      expect(a.text + b.text).toBe((await gen(t, uid(), PROMPT, 20)).text);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
