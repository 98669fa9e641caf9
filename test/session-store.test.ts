// The persistent session tier's two stores (a directory, Redis) held to one contract, plus each
// one's own failure modes: a full disk; a Redis that is killed, frozen or never there.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectoryStore } from "../src/sessions/dir-store.ts";
import { RedisStore } from "../src/sessions/redis-store.ts";
import { sessionKey, type SessionStore } from "../src/sessions/store.ts";
import { hasRedis, startRedis, type RedisServer } from "./helpers/redis.ts";

setDefaultTimeout(30_000);

const tmp = mkdtempSync(join(tmpdir(), "session-store-"));
// disk full: a 1 MiB tmpfs, when this process may mount one (root, outside a locked-down container)
const fullDir = join(tmp, "full");
mkdirSync(fullDir);
const canMount = (() => {
  try {
    return Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", fullDir], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  } catch {
    return false; // no mount(8)
  }
})();
let redis: RedisServer | undefined;

afterAll(async () => {
  if (canMount) Bun.spawnSync(["umount", fullDir]);
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const newKey = () => sessionKey(crypto.randomUUID());
const allBytes = () => Uint8Array.from({ length: 256 }, (_, i) => i);
function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}
const same = (a: Uint8Array | null, b: Uint8Array) => a !== null && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

interface Backend {
  name: string;
  available: boolean;
  /** returns an opener of store instances on one shared location: two instances model two replicas */
  setup(): Promise<() => SessionStore>;
}
const backends: Backend[] = [
  { name: "DirectoryStore", available: true, setup: async () => () => new DirectoryStore(join(tmp, "shared")) },
  {
    name: "RedisStore",
    available: hasRedis(),
    async setup() {
      redis ??= await startRedis();
      return () => new RedisStore(redis!.url, { prefix: "test:shared:" });
    },
  },
];

describe.each(backends)("$name", (b) => {
  let open: () => SessionStore;
  let store: SessionStore;
  beforeAll(async () => {
    if (!b.available) return;
    open = await b.setup();
    store = open();
  });
  afterAll(() => store?.close());
  const it = test.skipIf(!b.available);

  it("round-trips binary data of both kinds: every byte value and 5 MiB", async () => {
    const k = newKey();
    const big = randomBytes(5 << 20);
    await store.put(k, "meta", allBytes());
    await store.put(k, "kv", big);
    const meta = await store.get(k, "meta");
    expect(meta).toBeInstanceOf(Uint8Array);
    expect(same(meta, allBytes())).toBe(true);
    const kv = await store.get(k, "kv");
    expect(kv?.length).toBe(big.length);
    expect(same(kv, big)).toBe(true);
    // a view into a larger buffer stores only its own bytes
    await store.put(k, "meta", allBytes().subarray(10, 20));
    expect(same(await store.get(k, "meta"), allBytes().subarray(10, 20))).toBe(true);
  });

  it("get of an absent record is null; put replaces the whole record, a longer one with a shorter one too", async () => {
    const k = newKey();
    expect(await store.get(k, "kv")).toBeNull();
    await store.put(k, "meta", Uint8Array.of(1));
    expect(await store.get(k, "kv")).toBeNull();
    await store.put(k, "kv", new Uint8Array(1000).fill(7));
    await store.put(k, "kv", Uint8Array.of(1, 2, 3));
    expect(same(await store.get(k, "kv"), Uint8Array.of(1, 2, 3))).toBe(true);
    await store.put(k, "kv", new Uint8Array(0));
    expect((await store.get(k, "kv"))?.length).toBe(0);
  });

  it("delete removes both kinds, from list() too, and is idempotent", async () => {
    const k = newKey();
    await store.put(k, "meta", Uint8Array.of(1));
    await store.put(k, "kv", Uint8Array.of(2));
    await store.delete(k);
    expect(await store.get(k, "meta")).toBeNull();
    expect(await store.get(k, "kv")).toBeNull();
    expect((await store.list()).filter((r) => r.key === k)).toEqual([]);
    await store.delete(k);
    await store.delete(newKey());
  });

  it("list() reports both kinds with their sizes and last use", async () => {
    const k = newKey();
    const t0 = Date.now();
    await store.put(k, "meta", new Uint8Array(10));
    await store.put(k, "kv", new Uint8Array(12345));
    const t1 = Date.now();
    const mine = (await store.list()).filter((r) => r.key === k).sort((x, y) => x.kind.localeCompare(y.kind));
    expect(mine.map(({ key, kind, bytes }) => ({ key, kind, bytes }))).toEqual([
      { key: k, kind: "kv", bytes: 12345 },
      { key: k, kind: "meta", bytes: 10 },
    ]);
    for (const r of mine) {
      expect(r.lastUsed).toBeGreaterThanOrEqual(t0 - 2000);
      expect(r.lastUsed).toBeLessThanOrEqual(t1 + 2000);
    }
  });

  it("concurrent puts and deletes on many keys leave list() in agreement with get()", async () => {
    const keys = Array.from({ length: 24 }, newKey);
    await Promise.all(keys.map((k, i) => store.put(k, i % 2 ? "kv" : "meta", new Uint8Array(i + 1).fill(i))));
    await Promise.all(keys.filter((_, i) => i % 3 === 0).map((k) => store.delete(k)));
    const listed = new Map((await store.list()).map((r) => [r.key, r]));
    for (const [i, k] of keys.entries()) {
      const kind = i % 2 ? "kv" : "meta";
      const got = await store.get(k, kind);
      expect(got === null ? undefined : { kind, bytes: got.length }).toEqual(i % 3 === 0 ? undefined : { kind, bytes: i + 1 });
      expect(listed.get(k)?.bytes).toBe(i % 3 === 0 ? undefined : i + 1);
    }
  });

  it("a second instance (another replica) sees what the first wrote and deleted", async () => {
    const other = open();
    try {
      const k = newKey();
      await store.put(k, "kv", allBytes());
      expect(same(await other.get(k, "kv"), allBytes())).toBe(true);
      expect((await other.list()).some((r) => r.key === k && r.kind === "kv" && r.bytes === 256)).toBe(true);
      await other.put(k, "meta", Uint8Array.of(9));
      expect(same(await store.get(k, "meta"), Uint8Array.of(9))).toBe(true);
      await other.delete(k);
      expect(await store.get(k, "kv")).toBeNull();
    } finally {
      other.close();
    }
  });
});

describe("DirectoryStore on disk", () => {
  const tempFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith(".tmp"));

  test("files are named by the key alone, and no temp file is left behind", async () => {
    const dir = join(tmp, "names");
    const s = new DirectoryStore(dir);
    const requestId = "client-chosen-request-id";
    const k = sessionKey(requestId);
    await s.put(k, "meta", Uint8Array.of(1));
    await s.put(k, "kv", Uint8Array.of(2));
    const names = readdirSync(dir).sort();
    expect(names).toEqual([`${k}.kv`, `${k}.meta`]);
    expect(names.some((n) => n.includes(requestId))).toBe(false);
    expect(s.description).toBe(`directory ${dir}`);
  });

  test("the directory is created 0700, and an existing one is tightened to 0700", async () => {
    const fresh = join(tmp, "mode/a/b");
    new DirectoryStore(fresh);
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    const loose = join(tmp, "loose");
    mkdirSync(loose, { mode: 0o755 });
    chmodSync(loose, 0o755);
    new DirectoryStore(loose, { fsync: false });
    expect(statSync(loose).mode & 0o777).toBe(0o700);
  });

  test("a key that is not a hex hash is refused", async () => {
    const s = new DirectoryStore(join(tmp, "keys"));
    for (const bad of ["../../etc/passwd", "abc", sessionKey("x").toUpperCase(), `${sessionKey("x")}/..`, ""]) {
      await expect(s.put(bad, "meta", Uint8Array.of(1))).rejects.toThrow(/invalid session store key/);
      await expect(s.get(bad, "kv")).rejects.toThrow(/invalid session store key/);
      await expect(s.delete(bad)).rejects.toThrow(/invalid session store key/);
    }
    expect(readdirSync(join(tmp, "keys"))).toEqual([]);
  });

  test("list() skips foreign and temp files and removes stale temp files", async () => {
    const dir = join(tmp, "foreign");
    const s = new DirectoryStore(dir, { fsync: false });
    const k = newKey();
    await s.put(k, "meta", Uint8Array.of(1, 2));
    writeFileSync(join(dir, "notes.txt"), "x");
    writeFileSync(join(dir, `${k}.other`), "x");
    writeFileSync(join(dir, `.${k}.kv.1.fresh.tmp`), "x");
    const stale = join(dir, `.${k}.kv.1.stale.tmp`);
    writeFileSync(stale, "x");
    const old = (Date.now() - 2 * 3600_000) / 1000;
    utimesSync(stale, old, old);
    expect(await s.list()).toEqual([{ key: k, kind: "meta", bytes: 2, lastUsed: expect.any(Number) }]);
    expect(tempFiles(dir)).toEqual([`.${k}.kv.1.fresh.tmp`]);
  });

  test.skipIf(!canMount)("disk full: put rejects with ENOSPC and the previous record stays intact", async () => {
    const s = new DirectoryStore(fullDir);
    const k = newKey();
    const before = randomBytes(1000);
    await s.put(k, "kv", before);
    const err = await s.put(k, "kv", randomBytes(2 << 20)).then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(err?.code).toBe("ENOSPC");
    expect(tempFiles(fullDir)).toEqual([]);
    expect(same(await s.get(k, "kv"), before)).toBe(true);
    expect(await s.list()).toEqual([{ key: k, kind: "kv", bytes: 1000, lastUsed: expect.any(Number) }]);
    // the space is back: a small put still works
    await s.put(k, "meta", Uint8Array.of(5));
    expect(same(await s.get(k, "meta"), Uint8Array.of(5))).toBe(true);
  });
});

describe.skipIf(!hasRedis())("RedisStore failures", () => {
  const timed = async (p: Promise<unknown>) => {
    const t0 = performance.now();
    const err = await p.then(() => null, (e: Error) => e);
    return { err, ms: performance.now() - t0 };
  };

  test("description hides credentials; nothing listening rejects at once; close() is idempotent", async () => {
    expect(new RedisStore("redis://user:s3cret@127.0.0.1:1/0").description).toBe("redis://127.0.0.1:1/0");
    expect(new RedisStore("redis://:pw@h:6379").description).toBe("redis://h:6379");
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    l.stop(true);
    const s = new RedisStore(`redis://127.0.0.1:${l.port}`);
    const r = await timed(s.put(newKey(), "meta", Uint8Array.of(1)));
    expect(r.err).toBeInstanceOf(Error);
    expect(r.ms).toBeLessThan(5000);
    s.close();
    s.close();
    expect((await timed(s.get(newKey(), "kv"))).err?.message).toMatch(/closed/);
    await expect(s.put("../../x", "kv", Uint8Array.of(1))).rejects.toThrow(/invalid session store key/);
  });

  test("killed: calls reject quickly; after a restart on the same port the data is there and calls work", async () => {
    const r1 = await startRedis();
    const s = new RedisStore(r1.url, { timeoutMs: 2000 });
    const k = newKey();
    try {
      await s.put(k, "kv", allBytes());
      r1.kill();
      await Bun.sleep(100);
      for (const p of [s.put(k, "meta", Uint8Array.of(1)), s.get(k, "kv"), s.list()]) {
        const r = await timed(p);
        expect(r.err).toBeInstanceOf(Error);
        expect(r.ms).toBeLessThan(5000);
      }
      const r2 = await startRedis({ port: r1.port, dir: r1.dir });
      try {
        expect(same(await s.get(k, "kv"), allBytes())).toBe(true); // the append-only file kept it
        await s.put(k, "meta", Uint8Array.of(2));
        expect((await s.list()).map((x) => x.kind).sort()).toEqual(["kv", "meta"]);
      } finally {
        await r2.stop();
      }
    } finally {
      s.close();
      r1.kill();
    }
  });

  test("frozen (SIGSTOP): calls time out; once it resumes, calls work again", async () => {
    const r = await startRedis();
    const s = new RedisStore(r.url, { timeoutMs: 500 });
    const k = newKey();
    try {
      await s.put(k, "meta", Uint8Array.of(3));
      process.kill(r.pid, "SIGSTOP");
      const t = await timed(s.get(k, "meta"));
      expect(t.err?.message).toMatch(/timed out/);
      expect(t.ms).toBeLessThan(5000);
      process.kill(r.pid, "SIGCONT");
      expect(same(await s.get(k, "meta"), Uint8Array.of(3))).toBe(true);
    } finally {
      process.kill(r.pid, "SIGCONT");
      s.close();
      await r.stop();
    }
  });
});
