// Sessions survive the process: SIGTERM (drain, then every KV state written) and kill -9 (the
// tokens of every finished request were durable), each followed by a restart on the same
// SESSION_DIR. The server runs as a real child process (`bun scripts/serve.ts`).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureModel } from "../src/gguf/models.ts";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.ts";

setDefaultTimeout(120_000);

const PROMPT = "[INST] Generate a very long poem about 1000 cats [/INST]\n\n";
const dirs: string[] = [];
const procs: ServerProcess[] = [];
afterAll(() => {
  for (const p of procs) p.proc.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function server(dir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const s = await startServerProcess({ MODEL_PATH: await ensureModel("tiny"), PARALLEL: "2", CTX_SIZE: "256", SESSION_DIR: dir, THREADS: "2", ...env });
  procs.push(s);
  return s;
}

async function gen(s: ServerProcess, id: string, prompt: string, n: number) {
  const r = await s.post("/api/generate-one", { request_id: id, prompt, stream_response: false, generation_config: { do_sample: false, max_new_tokens: n } });
  expect(r.status).toBe(200);
  return { text: await r.text(), session: r.headers.get("x-session") };
}

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "sess-restart-"));
  dirs.push(d);
  return join(d, "sessions");
};

/**
 * 12 greedy tokens of "keep-1" (and 24 in one go under "whole"), `stop` the server, start another
 * on the same SESSION_DIR and continue "keep-1" by 12: its x-session, the 12 + 12 text and the 24.
 */
async function acrossRestart(stop: (s: ServerProcess) => Promise<void>): Promise<{ session: string | null; text: string; whole: string; after: ServerProcess }> {
  const dir = tempDir();
  const a = await server(dir);
  const first = await gen(a, "keep-1", PROMPT, 12);
  const whole = await gen(a, "whole", PROMPT, 24);
  await stop(a);
  const after = await server(dir);
  const more = await gen(after, "keep-1", "IGNORED", 12);
  return { session: more.session, text: first.text + more.text, whole: whole.text, after };
}

describe("restart parity", () => {
  test("after SIGTERM the session's KV state is restored: 12 + restart + 12 equals 24 in one go", async () => {
    const r = await acrossRestart(async (a) => {
      a.proc.kill("SIGTERM");
      expect(await a.exited).toBe(0);
      expect(a.log()).toContain("sessions written: 2");
    });
    expect(r.session).toBe("restored");
    expect(r.text).toBe(r.whole);
    const info = (await (await fetch(`${r.after.url}/api/cache/keep-1`)).json()) as { tier: string; generated_tokens: number };
    expect(info).toMatchObject({ tier: "kv", generated_tokens: 24 });
    r.after.proc.kill("SIGTERM");
    expect(await r.after.exited).toBe(0);
  });

  test("after kill -9 the session's tokens are there (decoded again): same text as without the crash", async () => {
    const r = await acrossRestart(async (a) => {
      a.proc.kill("SIGKILL");
      await a.exited;
    });
    expect(r.session).toBe("recomputed");
    expect(r.text).toBe(r.whole);
    expect((await gen(r.after, "brand-new", "IGNORED", 4)).session).toBe("new");
    r.after.proc.kill("SIGKILL");
  });
});

describe("drain", () => {
  test("SIGTERM lets an in-flight stream finish, refuses new requests with 503 + Retry-After, and exits 0", async () => {
    const dir = tempDir();
    const a = await server(dir);
    const expected = await gen(a, "ref", PROMPT, 200);
    const res = await a.post("/api/generate-one", { request_id: "live", prompt: PROMPT, generation_config: { do_sample: false, max_new_tokens: 200 } });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = dec.decode((await reader.read()).value!, { stream: true });
    a.proc.kill("SIGTERM");
    await Bun.sleep(100);
    const refused = await a.post("/api/generate-one", { request_id: "late", prompt: "Hi" });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect((await fetch(`${a.url}/health`)).status).toBe(503); // out of a load balancer's rotation
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    expect(text).toBe(expected.text);
    expect(await a.exited).toBe(0);
  });
});
