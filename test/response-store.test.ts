// Stored responses stay bounded: idle past SESSION_TTL_S they expire, past RESPONSES_MAX the least
// recently used go first, in memory and in SESSION_DIR (where the order survives a restart).
import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../src/config.ts";
import { openResponseStore, UseOrder, type ResponseRecord } from "../src/http/responses/store.ts";

const rec = (id: string): ResponseRecord => ({ id, response: { id }, inputItems: [], conversation: [{ role: "user", content: id }], session: id });

test("UseOrder: what is idle past the TTL, then the least recently used past the cap", () => {
  const order = new UseOrder(1000, 3);
  order.use("a", 0);
  order.use("b", 100);
  order.use("c", 200);
  order.use("a", 300); // a read: now the most recent
  expect(order.trim(400)).toEqual([]);
  order.use("d", 400);
  expect(order.trim(400)).toEqual(["b"]); // four past a cap of three: the least recently used
  expect(order.expired("c", 1201)).toBe(true);
  expect(order.trim(1350)).toEqual(["c", "a"]); // idle past a second; d is not
  expect(order.size).toBe(1);
  expect(new UseOrder(0, 0).expired("x", 1e15)).toBe(false); // 0: no TTL, no cap
});

for (const store of ["off", "dir"] as const) {
  test(`SESSION_STORE=${store}: RESPONSES_MAX keeps the most recently used`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "responses-"));
    const settings = loadSettings({ SESSION_STORE: store, SESSION_DIR: dir, RESPONSES_MAX: "2" }).sessions;
    try {
      const s = openResponseStore(settings);
      await s.put(rec("a"));
      await s.put(rec("b"));
      expect((await s.get("a"))?.id).toBe("a"); // a used after b
      await s.put(rec("c"));
      expect(await s.get("b")).toBeNull();
      expect((await s.get("a"))?.conversation).toEqual([{ role: "user", content: "a" }]);
      expect((await s.get("c"))?.id).toBe("c");
      if (store === "dir") {
        expect(readdirSync(join(dir, "responses")).length).toBe(2);
        await Bun.sleep(20); // file times a few milliseconds apart
        await s.get("a"); // a used last: c is the older on disk
        await Bun.sleep(20);
        const again = openResponseStore(settings); // a restart reads the order from the files' times
        await again.put(rec("d"));
        expect(await again.get("c")).toBeNull();
        expect((await again.get("a"))?.id).toBe("a");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
