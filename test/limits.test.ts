// Limits that need their own engine settings: queue bound, end-of-generation, KV pressure.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { startTestApp, uid, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

describe("queue bound", () => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp({ PARALLEL: "1", MAX_QUEUE: "1" })));
  afterAll(() => t?.close());

  test("a full queue answers 503 with Retry-After; queued requests still complete", async () => {
    const long = () => t.post("/api/generate-one", { request_id: uid(), prompt: "Once upon a time", stream_response: false, generation_config: { do_sample: false, max_new_tokens: 200 } });
    const a = long();
    const b = long();
    await Bun.sleep(20);
    const c = await long();
    expect(c.status).toBe(503);
    expect(c.headers.get("retry-after")).toBeTruthy();
    expect(((await c.json()) as { error: { code: string } }).error.code).toBe("queue_full");
    expect((await a).status).toBe(200);
    expect((await b).status).toBe(200);
  });
});

describe("end of generation", () => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp({}, "tiny-eos")));
  afterAll(() => t?.close());

  test("greedy stops at EOS before max_new_tokens; EOS is not in the text", async () => {
    const id = uid();
    const text = await t.generate(id, "Once upon a time", { max_new_tokens: 200 });
    const info = (await t.engine.describe(id))!;
    expect(info.generated_tokens).toBeLessThan(200);
    expect(text).not.toContain("</s>");
    const full = await t.generate(id, "x", { max_new_tokens: 1 }, { only_new_tokens: false });
    expect(full.startsWith(`<s> Once upon a time${text}`)).toBe(true);
  });
});

// 4 slots (and, unified, 256 cells): cached sequences must be evicted (and later re-decoded) to make room
describe.each([["per-slot KV", "false"], ["unified KV", "true"]])("KV pressure, %s", (_, unified) => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp({ PARALLEL: "2", CTX_SIZE: "128", KV_UNIFIED: unified, KV_CELLS: "256", CACHE_SEQUENCES: "4" })));
  afterAll(() => t?.close());

  test("evicted sequences keep their tokens and continue exactly as if never evicted", async () => {
    const ids = Array.from({ length: 6 }, () => uid("kv"));
    const prompts = ids.map((_, i) => `Story number ${i} begins`);
    const first = [];
    for (let i = 0; i < ids.length; i++) first.push(await t.generate(ids[i]!, prompts[i]!, { max_new_tokens: 30 }));
    const stats = await t.engine.stats();
    expect(stats.evictions).toBeGreaterThan(0);
    for (let i = 0; i < ids.length; i++) {
      const more = await t.generate(ids[i]!, "ignored", { max_new_tokens: 10 });
      expect(first[i]! + more).toBe(await t.generate(uid(), prompts[i]!, { max_new_tokens: 40 }));
    }
  });
});

describe("beams in one shared KV buffer", () => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp({ PARALLEL: "2", CTX_SIZE: "128", KV_UNIFIED: "true", KV_CELLS: "128" })));
  afterAll(() => t?.close());

  test("beams that could never fit are refused with 422, not queued forever", async () => {
    const r = await t.post("/api/generate-one", { request_id: uid(), prompt: "Hi", stream_response: false, generation_config: { num_beams: 2, max_new_tokens: 100 } });
    expect(r.status).toBe(422); // 2 beams × 100 + prompt > 128 cells
    expect(((await r.json()) as { error: { field: string } }).error.field).toBe("generation_config.num_beams");
    const ok = await t.post("/api/generate-one", { request_id: uid(), prompt: "Hi", stream_response: false, generation_config: { num_beams: 2, max_new_tokens: 40 } });
    expect(ok.status).toBe(200);
  });
});

describe("build-native.sh", () => {
  const hasCublas = spawnSync("sh", ["-c", "ldconfig -p | grep -q libcublas.so || ls /usr/local/cuda/lib64/libcublas.so* >/dev/null 2>&1"]).status === 0;
  test.skipIf(hasCublas || !Bun.which("nvcc"))("asking for CUDA without cuBLAS fails with a message saying exactly that", () => {
    const r = spawnSync("bash", [join(import.meta.dir, "../build-native.sh")], { env: { ...process.env, GGML_CUDA: "1" }, encoding: "utf8" });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("cuBLAS was not found");
  });
});
