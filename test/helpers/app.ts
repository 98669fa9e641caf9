// A real app on a real engine worker for HTTP tests: app.handle() or a listening server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings, type Settings } from "../../src/config.ts";
import { EngineClient } from "../../src/engine/client.ts";
import { ensureModel, type PresetName } from "../../src/gguf/models.ts";
import { createApp } from "../../src/http/app.ts";

export interface TestApp {
  settings: Settings;
  engine: EngineClient;
  app: ReturnType<typeof createApp>;
  /** POST JSON through app.handle */
  post(path: string, body: unknown, init?: RequestInit): Promise<Response>;
  /** greedy text of a prompt under a fresh request_id */
  generate(requestId: string, prompt: string, cfg?: Record<string, unknown>, extra?: Record<string, unknown>): Promise<string>;
  /** stops the engine (it writes its sessions first) and removes the app's own session directory */
  close(): Promise<unknown>;
}

export async function startTestApp(env: Record<string, string> = {}, preset: PresetName = "tiny"): Promise<TestApp> {
  // tests churn through many request_ids: no eviction log lines
  // each app has its own session directory (removed by close) unless the test names one
  const sessionDir = env.SESSION_DIR ? null : mkdtempSync(join(tmpdir(), "sessions-"));
  const settings = loadSettings({
    MODEL_PATH: await ensureModel(preset), PARALLEL: "4", CTX_SIZE: "512", LOG_EVICTIONS: "false", SESSION_FSYNC: "false",
    ...(sessionDir ? { SESSION_DIR: sessionDir } : {}), ...env,
  });
  const engine = new EngineClient(settings);
  await engine.ready;
  const app = createApp(engine, settings);
  const post = (path: string, body: unknown, init: RequestInit = {}) =>
    app.handle(new Request(`http://local${path}`, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), ...init }));
  return {
    settings,
    engine,
    app,
    post,
    async generate(requestId, prompt, cfg = {}, extra = {}) {
      const r = await post("/api/generate-one", {
        request_id: requestId, prompt, stream_response: false,
        generation_config: { do_sample: false, max_new_tokens: 16, ...cfg }, ...extra,
      });
      if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
      return r.text();
    },
    async close() {
      await engine.close();
      if (sessionDir) rmSync(sessionDir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` on a fresh test app, closed afterwards whatever happens. */
export async function withTestApp<T>(env: Record<string, string>, fn: (t: TestApp) => Promise<T>): Promise<T> {
  const t = await startTestApp(env);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

let counter = 0;
export const uid = (p = "req") => `${p}-${process.pid}-${++counter}-${Date.now()}`;

/** Waits until the engine client has let go of `requestId`; false if it still holds it after `ms`. */
export async function waitReleased(t: TestApp, requestId: string, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (t.engine.active.has(requestId) && Date.now() < deadline) await Bun.sleep(10);
  return !t.engine.active.has(requestId);
}

/**
 * Sends a non-streaming generate-one over a real socket, disconnects after `afterMs`, and waits
 * until the engine has let go of the request_id. Returns false if it did not within 3 s.
 */
export async function disconnectMidRequest(t: TestApp, body: Record<string, unknown>, afterMs: number): Promise<boolean> {
  const server = Bun.serve({ port: 0, fetch: (req) => t.app.handle(req), idleTimeout: 0 });
  try {
    const ac = new AbortController();
    const p = fetch(`http://127.0.0.1:${server.port}/api/generate-one`, {
      method: "POST", signal: ac.signal, body: JSON.stringify({ ...body, stream_response: false }),
    }).catch(() => null);
    await Bun.sleep(afterMs);
    ac.abort();
    await p;
    return await waitReleased(t, body.request_id as string);
  } finally {
    server.stop(true);
  }
}
