// Property-based checks (fast-check). Sampling: any finite or extreme logits, temperature, top-k and
// top-p give a valid token id, and the greedy one whenever the distribution degenerates. Routes:
// any JSON value or byte string gets a documented status (never a 500 or a hang) and the server
// stays healthy. FUZZ_RUNS sets the runs per property (default 1000; sampling properties run 10x that).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import fc from "fast-check";
import { argmax } from "../src/sampling/logits.ts";
import { MIN_TEMPERATURE, TokenSampler } from "../src/sampling/sampler.ts";
import { TokenHistory } from "../src/sampling/token-history.ts";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(300_000);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);

const finite = fc.float({ noNaN: true, noDefaultInfinity: true }); // includes ±3.4e38 and denormals
const logitsArb = fc.array(fc.oneof(finite, fc.float({ min: -30, max: 30, noNaN: true })), { minLength: 1, maxLength: 64 });
const temperatureArb = fc.oneof(fc.constant(0), fc.constantFrom(1e-45, 1e-40, 1e-30, 1e-20, 1e-6, 1, 2), fc.double({ min: 1e-45, max: 100, noNaN: true }));
const samplingArb = fc.record({
  doSample: fc.boolean(), temperature: temperatureArb, topK: fc.integer({ min: 0, max: 70 }),
  topP: fc.oneof(fc.constant(1), fc.double({ min: 1e-12, max: 1, noNaN: true })), seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
});

describe("sampling over arbitrary logits", () => {
  test("always a valid token id", () => {
    const anyFloats = fc.array(fc.float(), { minLength: 1, maxLength: 64 }); // NaN and ±inf too: still an id
    const penalty = fc.oneof(fc.double({ min: 0.01, max: 10, noNaN: true }), fc.constantFrom(1e-300, 1e-88, 1e-40, 1e38, 1e300));
    fc.assert(fc.property(fc.oneof(logitsArb, anyFloats), samplingArb, penalty, (values, s, penalty) => {
      const logits = Float32Array.from(values);
      const history = new TokenHistory([0, logits.length - 1], logits.length);
      const token = new TokenSampler({ ...s, repetitionPenalty: penalty }).sample(logits, history);
      return Number.isInteger(token) && token >= 0 && token < logits.length;
    }), { numRuns: RUNS * 10 });
  });

  test("greedy whenever the distribution degenerates: underflowing temperature, top_k 1, or one dominant logit", () => {
    fc.assert(fc.property(logitsArb, samplingArb, (values, s) => {
      const logits = Float32Array.from(values);
      const best = argmax(logits);
      const second = Math.max(-Infinity, ...values.filter((_, i) => i !== best));
      if (second === logits[best]) return true; // a tie: greedy and sampling may pick different tied ids
      const t = Math.max(s.temperature, Number.MIN_VALUE);
      const dominant = Number.isFinite(logits[best]! - second) && (logits[best]! - second) / t > 2000;
      const degenerate = !s.doSample || s.temperature < MIN_TEMPERATURE || s.topK === 1 || dominant;
      if (!degenerate) return true;
      return new TokenSampler({ ...s, repetitionPenalty: 1 }).sample(logits.slice(), null) === best;
    }), { numRuns: RUNS * 10 });
  });
});

describe("routes over arbitrary bodies", () => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp({ DEFAULT_MAX_NEW_TOKENS: "3", MAX_BODY_BYTES: "65536", PARALLEL: "2" })));
  afterAll(() => t?.close());

  const DOCUMENTED = new Set([200, 400, 404, 405, 409, 413, 422, 503]);
  const fields = ["request_id", "prompt", "prompts", "generation_config", "stream_response", "only_new_tokens", "num_beams", "max_new_tokens", "temperature", "top_k", "top_p", "seed", "do_sample"];
  const nearValid = fc.dictionary(fc.constantFrom(...fields), fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string(), fc.integer(), fc.dictionary(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 2 }))));
  const body = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? "null"),
    nearValid.map((v) => JSON.stringify(v)),
    fc.uint8Array({ maxLength: 300 }),
    fc.string({ unit: "binary", maxLength: 200 }),
  );

  // well-formed requests with arbitrary (often extreme) generation settings: these reach the engine
  const num = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, 1e-40, 1e-20, 0.5, 1, 2), fc.integer({ min: -3, max: 6 }));
  const config = fc.record({
    do_sample: fc.boolean(), temperature: num, top_p: num, top_k: fc.oneof(fc.integer({ min: -1, max: 60 }), num), max_new_tokens: fc.integer({ min: -1, max: 6 }),
    num_beams: fc.integer({ min: 0, max: 3 }), repetition_penalty: num, length_penalty: num, seed: fc.oneof(fc.integer({ min: -1, max: 2 ** 32 }), num),
  }, { requiredKeys: [] });
  const request = fc.record({
    request_id: fc.oneof(fc.constantFrom("a", "b", "c"), fc.string({ minLength: 1, maxLength: 20 })), prompt: fc.string({ maxLength: 40 }),
    stream_response: fc.boolean(), only_new_tokens: fc.boolean(), generation_config: config,
  }, { requiredKeys: ["request_id", "prompt"] });

  test("POST /api/generate-one: well-formed requests with arbitrary settings get 200 or a documented 4xx", async () => {
    await fc.assert(fc.asyncProperty(request, async (r) => DOCUMENTED.has(await send("POST", "/api/generate-one", JSON.stringify(r)))), { numRuns: Math.ceil(RUNS / 5) });
  });

  /** Sends one request; reads the whole body (a stream too) within 10 s. */
  async function send(method: string, path: string, payload?: string | Uint8Array): Promise<number> {
    const r = await t.app.handle(new Request(`http://local${path}`, { method, body: payload }));
    const read = r.arrayBuffer();
    const ok = await Promise.race([read.then(() => true), Bun.sleep(10_000).then(() => false)]);
    if (!ok) throw new Error(`${method} ${path} hung`);
    return r.status;
  }

  for (const route of ["/api/generate-one", "/api/generate-batch"]) {
    test(`POST ${route}: a documented status for any body`, async () => {
      await fc.assert(fc.asyncProperty(body, async (payload) => DOCUMENTED.has(await send("POST", route, payload))), { numRuns: RUNS });
    });
  }

  test("GET and DELETE /api/cache/<any id>, GET /api/cache?<any query>: documented statuses", async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: "binary", minLength: 1, maxLength: 40 }), fc.string({ maxLength: 12 }), async (id, q) => {
      const path = `/api/cache/${encodeURIComponent(id)}`;
      const list = `/api/cache?limit=${encodeURIComponent(q)}&after=${encodeURIComponent(id)}`;
      for (const [m, p] of [["GET", path], ["DELETE", path], ["GET", list], ["PATCH", path]] as const) {
        if (!DOCUMENTED.has(await send(m, p))) return false;
      }
      return true;
    }), { numRuns: RUNS });
  });

  test("afterwards the server is healthy and generates", async () => {
    expect((await t.app.handle(new Request("http://local/health"))).status).toBe(200);
    expect((await t.generate("after-fuzz", "Hello", { max_new_tokens: 3 })).length).toBeGreaterThan(0);
    expect((await t.engine.stats()).running).toBe(0);
  });
});
