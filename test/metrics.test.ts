// GET /metrics on the real engine: valid Prometheus text, vLLM's names, counters that move with
// real requests (seed and /v1), and the API-key rule (METRICS_PUBLIC).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestApp, withTestApp, type TestApp } from "./helpers/app.ts";

let t: TestApp;
beforeAll(async () => void (t = await startTestApp()));
afterAll(() => t?.close());

/** Parses the text exposition strictly: every sample line must be `name{labels} value`. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/i.exec(line);
    // (prom-client writes NaN as "Nan"; Prometheus parses floats case-insensitively)
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    out.set(m[1]! + (m[2] ?? ""), Number(m[3]));
  }
  return out;
}
const scrape = async (app = t) => {
  const r = await app.app.handle(new Request("http://local/metrics"));
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toContain("text/plain");
  return parse(await r.text());
};

describe("/metrics", () => {
  test("parses, and has vLLM's names and the server's own", async () => {
    const m = await scrape();
    for (const name of ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:time_to_first_token_seconds_count", "vllm:inter_token_latency_seconds_count", "vllm:e2e_request_latency_seconds_count", "vllm:request_queue_time_seconds_count", "vllm:prefix_cache_hits_total", "llm_server:prefix_reuse_total", 'llm_server:sessions{tier="kv"}', "process_resident_memory_bytes"]) {
      expect(m.has(name)).toBe(true);
    }
    expect(m.get("process_resident_memory_bytes")!).toBeGreaterThan(1e6);
  });

  test("counters move with requests: tokens, finishes by reason, one TTFT per sequence and one ITL per later token", async () => {
    const before = await scrape();
    await t.generate(`m-${Date.now()}`, "Once upon a time", { max_new_tokens: 7 });
    const v1 = await t.post("/v1/completions", { prompt: "Hello there", max_tokens: 5, temperature: 0 });
    expect(v1.status).toBe(200);
    const usage = ((await v1.json()) as { usage: { prompt_tokens: number } }).usage;
    const after = await scrape();
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta("vllm:generation_tokens_total")).toBe(12);
    expect(delta('vllm:request_success_total{finished_reason="length"}')).toBe(2);
    expect(delta("vllm:time_to_first_token_seconds_count")).toBe(2);
    expect(delta("vllm:inter_token_latency_seconds_count")).toBe(6 + 4);
    expect(delta("vllm:e2e_request_latency_seconds_count")).toBe(2);
    // queue time ends at admission, before the prompt is decoded: less than the time to first token
    expect(delta("vllm:request_queue_time_seconds_sum")).toBeLessThan(delta("vllm:time_to_first_token_seconds_sum"));
    expect(delta("vllm:prompt_tokens_total")).toBeGreaterThanOrEqual(usage.prompt_tokens + 2);
    expect(after.get('llm_server:sessions{tier="kv"}')!).toBeGreaterThanOrEqual(1); // the seed request's session
    expect(after.get("vllm:num_requests_running")).toBe(0);
  });

  test("with API keys /metrics needs one, unless METRICS_PUBLIC", async () => {
    await withTestApp({ API_KEYS: "secret" }, async (a) => {
      expect((await a.app.handle(new Request("http://local/metrics"))).status).toBe(401);
      const ok = await a.app.handle(new Request("http://local/metrics", { headers: { authorization: "Bearer secret" } }));
      expect(ok.status).toBe(200);
    });
    await withTestApp({ API_KEYS: "secret", METRICS_PUBLIC: "true" }, async (a) => {
      expect((await scrape(a)).has("vllm:num_requests_running")).toBe(true);
      expect((await a.app.handle(new Request("http://local/api/stats"))).status).toBe(401);
    });
  });
});
