// Stored responses stay bounded: idle past SESSION_TTL_S they expire, past RESPONSES_STORE_BYTES the
// least recently used go first, in memory and in SESSION_DIR (where the order survives a restart).
import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../src/config.ts";
import { openResponseStore, UseOrder, type ResponseRecord } from "../src/http/responses/store.ts";

const rec = (id: string): ResponseRecord => ({ id, response: { id }, inputItems: [], conversation: [{ role: "user", content: `${id} `.repeat(40) }], session: id });

test("UseOrder: what is idle past the TTL, then the least recently used past the byte cap", () => {
  const order = new UseOrder(1000, 300);
  order.use("a", 100, 0);
  order.use("b", 100, 100);
  order.use("c", 100, 200);
  order.use("a", undefined, 300); // a read: now the most recent, its size kept
  expect(order.bytes).toBe(300);
  expect(order.trim(400)).toEqual([]);
  order.use("d", 100, 400);
  expect(order.trim(400)).toEqual(["b"]); // 400 bytes past a cap of 300: the least recently used
  order.use("d", 250, 450); // rewritten larger
  expect(order.trim(450)).toEqual(["c", "a"]);
  expect(order.bytes).toBe(250);
  order.use("e", 10, 500);
  expect(order.expired("d", 1451)).toBe(true);
  expect(order.trim(1451)).toEqual(["d"]); // idle past a second; e is not
  expect(order.size).toBe(1);
  expect(new UseOrder(0, 0).expired("x", 1e15)).toBe(false); // 0: no TTL, no cap
});

for (const store of ["off", "dir"] as const) {
  test(`SESSION_STORE=${store}: RESPONSES_STORE_BYTES keeps the most recently used`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "responses-"));
    const size = JSON.stringify(rec("a")).length; // a file wraps it: {"rec": …}
    const settings = loadSettings({ SESSION_STORE: store, SESSION_DIR: dir, RESPONSES_STORE_BYTES: String(Math.round(size * 2.5)) }).sessions;
    try {
      const s = openResponseStore(settings);
      await s.put(rec("a"));
      await s.put(rec("b"));
      expect((await s.get("a"))?.id).toBe("a"); // a used after b
      await s.put(rec("c")); // three do not fit: b goes
      expect(await s.get("b")).toBeNull();
      expect((await s.get("a"))?.conversation).toEqual(rec("a").conversation);
      expect((await s.get("c"))?.id).toBe("c");
      if (store === "dir") {
        expect(readdirSync(join(dir, "responses")).length).toBe(2);
        await Bun.sleep(20); // file times a few milliseconds apart
        await s.get("a"); // a used last: c is the older on disk
        await Bun.sleep(20);
        const again = openResponseStore(settings); // a restart reads the order and sizes from the files
        await again.put(rec("d"));
        expect(await again.get("c")).toBeNull();
        expect((await again.get("a"))?.id).toBe("a");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
