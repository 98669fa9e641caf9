// HTTP/1.1 pipelining through the real server process (PIPELINING=true, the default): requests
// written back to back on one connection are all answered, in order, and none of their work is
// dropped. (Bun alone closes such a connection without answering: test/repro/bun-pipelining.ts.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ensureModel } from "../src/gguf/models.ts";
import { exchange } from "./helpers/raw-http.ts";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.ts";

setDefaultTimeout(120_000);

let s: ServerProcess;
let port: number;
beforeAll(async () => {
  s = await startServerProcess({ MODEL_PATH: await ensureModel("tiny"), PARALLEL: "2", CTX_SIZE: "256", SESSION_STORE: "off", IDLE_TIMEOUT_S: "5" });
  port = Number(new URL(s.url).port);
});
afterAll(() => s?.proc.kill("SIGKILL"));

let n = 0;
const id = (p: string) => `${p}-${process.pid}-${++n}`;
const post = (path: string, body: unknown, extra = "") => {
  const json = JSON.stringify(body);
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n${extra}\r\n${json}`;
};
const get = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
const gen = (requestId: string, prompt: string, stream: boolean, tokens = 20) =>
  ({ request_id: requestId, prompt, stream_response: stream, generation_config: { do_sample: false, max_new_tokens: tokens } });
/** the same generation asked alone, on its own connection */
const alone = async (prompt: string, tokens = 20) => (await s.post("/api/generate-one", gen(id("ref"), prompt, false, tokens))).text();

describe("pipelining", () => {
  test("a generation with /health, /api/cache and /api/stats pipelined behind it: four answers in order, the generation whole", async () => {
    const rid = id("pipe");
    const res = await exchange(port, post("/api/generate-one", gen(rid, "Once upon a time", false)) + get("/health") + get(`/api/cache/${encodeURIComponent(rid)}`) + get("/api/stats"));
    expect(res.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(res[0]!.body).toBe(await alone("Once upon a time"));
    expect(JSON.parse(res[1]!.body).status).toBe("ok");
    // the cache lookup ran after the generation ended: its session holds all 20 new tokens
    const entry = JSON.parse(res[2]!.body) as { request_id: string; generated_tokens: number };
    expect(entry.request_id).toBe(rid);
    expect(entry.generated_tokens).toBe(20);
    expect(JSON.parse(res[3]!.body).running).toBe(0); // and it ran after the generation too
  });

  test("two streamed generations pipelined: both complete, in order, each equal to the same request alone", async () => {
    const [a, b] = [id("sa"), id("sb")];
    const res = await exchange(port, post("/api/generate-one", gen(a, "The cat", true)) + post("/api/generate-one", gen(b, "A dog", true)));
    expect(res.map((r) => r.status)).toEqual([200, 200]);
    expect(res.map((r) => r.headers["transfer-encoding"])).toEqual(["chunked", "chunked"]);
    expect(res[0]!.body).toBe(await alone("The cat"));
    expect(res[1]!.body).toBe(await alone("A dog"));
  });

  test("a refused request pipelined ahead of a good one: both answered, the second runs", async () => {
    const rid = id("after-bad");
    const bad = "POST /api/generate-one HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{\"nope\":1";
    const res = await exchange(port, bad + post("/api/generate-one", gen(rid, "Hello", false, 5)));
    expect(res.map((r) => r.status)).toEqual([400, 200]);
    expect(res[1]!.body).toBe(await alone("Hello", 5));
  });

  test("pipelined requests trickled a few bytes at a time are framed the same", async () => {
    const bytes = get("/health") + post("/api/generate-one", gen(id("drip"), "Hi", false, 3)) + get("/health");
    const res = await exchange(port, bytes, { pieceBytes: 7, pieceMs: 1 });
    expect(res.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(res[1]!.body).toBe(await alone("Hi", 3));
  });

  test("fifty requests in one write get fifty answers", async () => {
    const res = await exchange(port, get("/health").repeat(50));
    expect(res).toHaveLength(50);
    expect(res.every((r) => r.status === 200)).toBe(true);
  });

  test("Connection: close on the first request: it is answered, the connection closes, and what followed never runs", async () => {
    const [a, b] = [id("close-a"), id("close-b")];
    const res = await exchange(port, post("/api/generate-one", gen(a, "Hi", false, 3), "Connection: close\r\n") + post("/api/generate-one", gen(b, "Hi", false, 3)));
    expect(res.map((r) => r.status)).toEqual([200]);
    expect((await fetch(`${s.url}/api/cache/${b}`)).status).toBe(404);
    expect((await fetch(`${s.url}/api/cache/${a}`)).status).toBe(200);
  });

  test("a client that keeps its side open gets its answers and a kept-alive connection", async () => {
    const res = await exchange(port, get("/health") + get("/api/stats"), { halfClose: false, timeoutMs: 1500 });
    expect(res.map((r) => r.status)).toEqual([200, 200]);
  });

  test("the server stays healthy", async () => {
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });
});
