// Hostile and unlucky clients against the real server process: bytes that are not UTF-8, bodies
// over the cap, wrong methods, malformed paths, connections left idle, a full queue, a client that
// never reads, and request_ids that try to forge log lines.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdtempSync, openSync, writeSync, closeSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGguf, tensorDataRange } from "../src/gguf/reader.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { withTestApp, uid, waitReleased } from "./helpers/app.ts";
import { exchange } from "./helpers/raw-http.ts";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.ts";

setDefaultTimeout(120_000);

let s: ServerProcess;
beforeAll(async () => {
  s = await startServerProcess({ MODEL_PATH: await ensureModel("tiny"), PARALLEL: "1", CACHE_SEQUENCES: "1", CTX_SIZE: "256", IDLE_TIMEOUT_S: "2", BODY_TIMEOUT_S: "1", LOG_EVICTIONS: "true", SESSION_STORE: "off" });
});
afterAll(() => s?.proc.kill("SIGKILL"));

const errorOf = async (r: Response) => ((await r.json()) as { error: { code: string; field?: string } }).error;
const rawBody = (id: Uint8Array) => {
  const head = new TextEncoder().encode('{"request_id":"');
  const tail = new TextEncoder().encode('","prompt":"hi","stream_response":false,"generation_config":{"max_new_tokens":2}}');
  return new Uint8Array([...head, ...id, ...tail]);
};

describe("bytes and sizes", () => {
  test("a body that is not valid UTF-8 gets 400: two ids differing in invalid bytes never merge into one session", async () => {
    for (const bad of [0xff, 0xfe]) {
      const r = await fetch(`${s.url}/api/generate-one`, { method: "POST", body: rawBody(new Uint8Array([0x75, 0x38, bad])) });
      expect(r.status).toBe(400);
      expect((await errorOf(r)).code).toBe("invalid_utf8");
    }
  });

  test("JSON nested 100,000 deep gets 400 before validation (it overflowed the validator's stack)", async () => {
    const r = await fetch(`${s.url}/api/generate-one`, { method: "POST", body: "[".repeat(100_000) + "]".repeat(100_000) });
    expect(r.status).toBe(400);
    expect((await errorOf(r)).code).toBe("json_too_deep");
  });

  test("bodies over MAX_BODY_BYTES get the JSON 413, declared or streamed, whatever their size", async () => {
    const big = new Uint8Array(9 * 1024 * 1024).fill(0x20);
    const declared = await fetch(`${s.url}/api/generate-one`, { method: "POST", body: big });
    expect(declared.status).toBe(413);
    expect((await errorOf(declared)).code).toBe("body_too_large");
    const stream = new ReadableStream({ pull: (c) => void (c.enqueue(new Uint8Array(1 << 20).fill(0x20)), 0) });
    const chunked = await fetch(`${s.url}/api/generate-one`, { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await errorOf(chunked)).code).toBe("body_too_large");
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });
});

describe("routes", () => {
  test("a wrong method on a known route is 405 with Allow; an unknown route 404; a malformed escape 400", async () => {
    const get = await fetch(`${s.url}/api/generate-one`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    const put = await fetch(`${s.url}/api/cache/some-id`, { method: "PUT" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, DELETE");
    expect((await fetch(`${s.url}/api/nope`)).status).toBe(404);
    const bad = await fetch(`${s.url}/api/cache/%ZZ`);
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe("invalid_path");
  });

  test("HTTP/1.0 without a Host header (HAProxy's health checks) is served, and no error is ever Bun's HTML page", async () => {
    const port = Number(new URL(s.url).port);
    const [health] = await exchange(port, "GET /health HTTP/1.0\r\n\r\n");
    expect(health!.status).toBe(200);
    expect(JSON.parse(health!.body).status).toBe("ok");
    const [missing] = await exchange(port, "GET /api/nope HTTP/1.0\r\n\r\n");
    expect(missing!.status).toBe(404);
    expect(missing!.headers["content-type"]).toContain("application/json");
    const body = '{"request_id":"h10","prompt":"hi","stream_response":false,"generation_config":{"max_new_tokens":2}}';
    const [gen] = await exchange(port, `POST /api/generate-one HTTP/1.0\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(gen!.status).toBe(200);
  });
});

describe("connections", () => {
  /** Opens a connection, sends `bytes`, and resolves with what came back once the server closed it. */
  const sendAndWait = (bytes: string) => new Promise<{ ms: number; got: string }>((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port: Number(new URL(s.url).port) });
    const t0 = Date.now();
    let got = "";
    sock.on("connect", () => sock.write(bytes));
    sock.on("data", (d) => (got += d)); // reading is what lets the FIN arrive
    sock.on("close", () => resolve({ ms: Date.now() - t0, got }));
    sock.on("error", () => {});
    setTimeout(() => (sock.destroy(), reject(new Error(`still open after 30 s (got ${JSON.stringify(got)})`))), 30_000);
  });

  // Bun applies idleTimeout only once a request head is complete; before that uWS closes the
  // connection after its own ~10 s header timeout (checked every 4 s), whatever IDLE_TIMEOUT_S says
  test("a connection that never completes its request head is closed (Bun's own header timeout, ~10-12 s)", async () => {
    const r = await sendAndWait("POST /api/generate-one HTTP/1.1\r\nHost: x\r\nContent-Le");
    expect(r.ms).toBeLessThan(20_000);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  test("IDLE_TIMEOUT_S closes a kept-alive connection that sends nothing after its response", async () => {
    const r = await sendAndWait("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(r.got).toStartWith("HTTP/1.1 200");
    expect(r.ms).toBeLessThan(9000); // IDLE_TIMEOUT_S 2 (Bun checks every few seconds)
  });

  test("a body that stops arriving is answered 408 after BODY_TIMEOUT_S and the connection closed", async () => {
    const r = await sendAndWait("POST /api/generate-one HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n{\"request_id\":");
    expect(r.got).toStartWith("HTTP/1.1 408");
    expect(r.ms).toBeLessThan(4000);
  });
});

describe("slow bodies", () => {
  test("BODY_TIMEOUT_S: a body trickled in byte by byte gets 408 (the idle timeout never fires for it)", async () => {
    const port = Number(new URL(s.url).port);
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = connect({ host: "127.0.0.1", port });
      let got = "";
      const drip = setInterval(() => sock.write("x"), 200);
      sock.on("connect", () => sock.write("POST /api/generate-one HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"request_id\":\""));
      sock.on("data", (d) => (got += d));
      sock.on("close", () => (clearInterval(drip), resolve(got)));
      sock.on("error", () => {});
      setTimeout(() => (clearInterval(drip), sock.destroy(), reject(new Error(`no answer in 8 s: ${got}`))), 8000);
    });
    expect(reply).toStartWith("HTTP/1.1 408");
    expect(reply).toContain("body_timeout");
  });
});

describe("MAX_CONNECTIONS", () => {
  test("past MAX_CONNECTIONS requests in flight new ones get 503 + Retry-After; /health still answers", async () => {
    const small = await startServerProcess({ MODEL_PATH: await ensureModel("tiny"), MAX_CONNECTIONS: "3", SESSION_STORE: "off" });
    const port = Number(new URL(small.url).port);
    const held = Array.from({ length: 5 }, () => {
      const sock = connect({ host: "127.0.0.1", port });
      sock.on("connect", () => sock.write("POST /api/generate-one HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"));
      sock.on("error", () => {});
      return sock;
    });
    try {
      await Bun.sleep(300);
      const r = await small.post("/api/generate-one", { request_id: "x", prompt: "hi", stream_response: false });
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).not.toBeNull();
      expect((await errorOf(r)).code).toBe("too_many_connections");
      expect((await fetch(`${small.url}/health`)).status).toBe(200);
      for (const sock of held) sock.destroy();
      await Bun.sleep(200);
      expect((await small.post("/api/generate-one", { request_id: "y", prompt: "hi", stream_response: false })).status).toBe(200);
    } finally {
      for (const sock of held) sock.destroy();
      small.proc.kill("SIGKILL");
    }
  });
});

describe("logs", () => {
  test("a request_id holding CR LF cannot forge a log line (evictions are logged as JSON)", async () => {
    const evil = "log\r\nX-Injected: 1";
    for (const id of [evil, "other-1"]) {
      const r = await s.post("/api/generate-one", { request_id: id, prompt: "Hello", stream_response: false, generation_config: { max_new_tokens: 2 } });
      expect(r.status).toBe(200);
    }
    await Bun.sleep(100);
    const lines = s.log().split("\n");
    expect(lines.some((l) => l.startsWith("X-Injected"))).toBe(false);
    const evicted = lines.filter((l) => l.includes('"event":"evicted"')).map((l) => JSON.parse(l).request_id);
    expect(evicted).toContain(evil); // pushed out by other-1 (earlier tests' sessions went before it)
  });
});

describe("waiting and reading", () => {
  test("QUEUE_TIMEOUT_S: a request that cannot get a slot in time gets 503 + Retry-After, streamed or not", async () => {
    await withTestApp({ PARALLEL: "1", CACHE_SEQUENCES: "2", QUEUE_TIMEOUT_S: "0.2" }, async (t) => {
      const busy = t.generate(uid(), "Once upon a time", { max_new_tokens: 490 }); // ~1 s on the tiny model
      await Bun.sleep(50);
      const ids = [uid(), uid()];
      const [streamed, whole] = await Promise.all([
        t.post("/api/generate-one", { request_id: ids[0], prompt: "Hi" }),
        t.post("/api/generate-one", { request_id: ids[1], prompt: "Hi", stream_response: false }),
      ]);
      for (const r of [streamed, whole]) {
        expect(r.status).toBe(503);
        expect(r.headers.get("retry-after")).not.toBeNull();
        expect((await errorOf(r)).code).toBe("queue_timeout");
      }
      for (const id of ids) expect(await t.engine.describe(id)).toBeNull(); // they never started: no session left
      await busy;
    });
  });

  test("a queued stream is not stalled before it starts: it gets its full text once a slot frees", async () => {
    await withTestApp({ PARALLEL: "1", CACHE_SEQUENCES: "2", STALL_TIMEOUT_S: "0.3" }, async (t) => {
      const busy = t.generate(uid(), "Once upon a time", { max_new_tokens: 490 }); // ~1 s, longer than the stall timeout
      await Bun.sleep(50);
      const id = uid();
      const r = await t.post("/api/generate-one", { request_id: id, prompt: "Hi", only_new_tokens: false, generation_config: { do_sample: false, max_new_tokens: 6 } });
      expect(r.status).toBe(200);
      const text = await r.text();
      await busy;
      expect(text).toBe(`<s> Hi${await t.generate(uid(), "Hi", { max_new_tokens: 6 })}`);
    });
  });

  test("STALL_TIMEOUT_S: a stream nobody reads stops its generation; the session keeps what was sent (nothing)", async () => {
    // 4000 tokens take seconds even on the tiny model: far longer than the stall timeout
    await withTestApp({ STALL_TIMEOUT_S: "0.3", CTX_SIZE: "4096" }, async (t) => {
      const id = uid();
      const r = await t.post("/api/generate-one", { request_id: id, prompt: "Once upon a time", generation_config: { do_sample: false, max_new_tokens: 4000 } });
      expect(r.status).toBe(200); // and its body is never read
      expect(await waitReleased(t, id, 5000)).toBe(true);
      expect((await t.engine.stats()).running).toBe(0);
      expect(await t.engine.describe(id)).toBeNull();
    });
  });
});

/** A copy of the tiny model whose final norm weights are NaN: every logit it produces is NaN. */
async function nanModel(): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), "nan-model-")), "nan.gguf");
  copyFileSync(await ensureModel("tiny"), path);
  const file = readGguf(path);
  const norm = file.tensors.find((t) => t.name === "output_norm.weight")!;
  const { start, end } = tensorDataRange(file, norm);
  const bytes = new Uint8Array(end - start);
  const view = new DataView(bytes.buffer);
  if (norm.type === 0) for (let i = 0; i < bytes.length; i += 4) view.setUint32(i, 0x7fc00000, true); // F32 NaN
  else for (let i = 0; i < bytes.length; i += 2) view.setUint16(i, 0x7e00, true); // F16 NaN
  const fd = openSync(path, "r+");
  writeSync(fd, bytes, 0, bytes.length, start);
  closeSync(fd);
  return path;
}

describe("numerics", () => {
  test("a temperature that underflows samples greedily instead of returning empty text", async () => {
    await withTestApp({}, async (t) => {
      const cfg = { do_sample: true, temperature: 1e-40, max_new_tokens: 8 };
      const tiny = await t.generate(uid(), "Once upon a time", cfg);
      expect(tiny).toBe(await t.generate(uid(), "Once upon a time", { do_sample: false, max_new_tokens: 8 }));
      expect(tiny.length).toBeGreaterThan(0);
      const beams = await t.generate(uid(), "Once upon a time", { ...cfg, num_beams: 2 });
      expect(beams).toBe(await t.generate(uid(), "Once upon a time", { do_sample: false, num_beams: 2, max_new_tokens: 8 }));
    });
  });

  test("NaN logits give a 500 naming the cause, later requests 503, and /health reports the model broken", async () => {
    await withTestApp({ MODEL_PATH: await nanModel() }, async (t) => {
      const ask = (cfg: object) => t.post("/api/generate-one", { request_id: uid(), prompt: "Hello", stream_response: false, generation_config: { ...cfg, max_new_tokens: 4 } });
      const first = await ask({ do_sample: false });
      expect(first.status).toBe(500);
      expect((await errorOf(first)).code).toBe("non_finite_logits");
      const later = await ask({ do_sample: true, seed: 1 });
      expect(later.status).toBe(503);
      expect((await errorOf(later)).code).toBe("model_broken");
      const h = await t.app.handle(new Request("http://local/health"));
      expect(h.status).toBe(503);
      expect(((await h.json()) as { status: string }).status).toBe("broken");
    });
  });
});
