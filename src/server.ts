// Starts the engine worker and the HTTP server. Used by `bun run server` and the compiled binary.
import { ConfigError, loadSettings, type Settings } from "./config.ts";
import { EngineClient } from "./engine/client.ts";
import { describeAttention } from "./engine/attention-probe.ts";
import { createApp } from "./http/app.ts";
import { startFront, type Front } from "./http/front/front.ts";
import { setThreadScheduling } from "./native/index.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function startServer(settings: Settings, opts: { quiet?: boolean; workerUrl?: string } = {}) {
  if (settings.httpSchedBatch && !setThreadScheduling(true) && process.platform === "linux") {
    console.warn("[server] could not put the HTTP thread in SCHED_BATCH; continuing with the default scheduling");
  }
  const engine = new EngineClient(settings, opts.workerUrl);
  const app = createApp(engine, settings);
  // Bun's own body limit is far above MAX_BODY_BYTES: the app enforces that one while reading, and
  // answers with its JSON 413 (Bun's own would be an empty one)
  // development: false, so an unexpected error is never answered with Bun's HTML error page (a stack trace)
  const serve = { maxRequestBodySize: 2 ** 40, idleTimeout: settings.idleTimeoutS, development: false };
  let front: Front | null = null;
  if (settings.pipelining) {
    // Bun.serve on a private unix socket (a 0700 directory), the pipelining front on the port
    const dir = mkdtempSync(join(tmpdir(), "llm-server-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    const upstream = join(dir, "http.sock");
    // (Bun's types leave idleTimeout out of the unix-socket options; Bun applies it there too)
    app.listen({ ...serve, unix: upstream } as unknown as Parameters<typeof app.listen>[0]);
    front = startFront({ host: settings.host, port: settings.port, upstream, maxPipelinedBytes: settings.maxPipelinedBytes });
  } else {
    app.listen({ ...serve, hostname: settings.host, port: settings.port });
  }
  const port = front ? front.port : app.server?.port;
  const log = opts.quiet ? () => {} : console.log;
  log(`[server] listening on http://${settings.host}:${port} (loading the model…)`);
  const model = await engine.ready;
  log(`[server] ready: ${model.description || "model"} from ${model.path} (${(model.nParams / 1e6).toFixed(1)}M params, CTX_SIZE ${model.ctxSize}, PARALLEL ${model.parallel}, llama.cpp ${model.llamaVersion}; ${describeAttention(model.attention)})`);
  const server = { stop: (force?: boolean) => (front?.close(), app.stop(force)) };
  const stop = () => void drain(engine, server, settings.shutdownGraceS, log).then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return { app, engine, port };
}

/**
 * SIGTERM/SIGINT: new generations get 503 + Retry-After, in-flight ones get SHUTDOWN_GRACE_S to
 * finish (then they are stopped, each stream ending cleanly), every session's KV state is written
 * to the store, and the HTTP server closes once the last response is sent.
 */
export async function drain(engine: EngineClient, app: { stop(force?: boolean): unknown }, graceS: number, log: (line: string) => void): Promise<void> {
  engine.draining = true;
  log(`[server] draining: ${engine.inFlight} request(s) in flight, up to ${graceS}s to finish`);
  const deadline = Date.now() + graceS * 1000;
  while (engine.inFlight > 0 && Date.now() < deadline) await Bun.sleep(20);
  if (engine.inFlight > 0) {
    log(`[server] grace period over: stopping ${engine.inFlight} request(s); their text so far stays in their sessions`);
    engine.abortAll();
    const hard = Date.now() + 5000;
    while (engine.inFlight > 0 && Date.now() < hard) await Bun.sleep(20);
  }
  const closed = engine.model ? await engine.close() : null;
  if (closed) log(`[server] sessions written: ${closed.written}${closed.failed ? `, ${closed.failed} failed` : ""}`);
  await Promise.race([Promise.resolve(app.stop(false)), Bun.sleep(2000)]); // lets the last responses reach their clients
  log("[server] stopped");
}

/** Loads the settings from the environment and serves; a bad setting or failed start exits 1 with one clear line. */
export async function runServer(opts: { workerUrl?: string } = {}): Promise<void> {
  try {
    await startServer(loadSettings(), opts);
  } catch (err) {
    console.error(`[server] ${err instanceof ConfigError ? "configuration error" : "failed to start"}: ${(err as Error).message}`);
    process.exit(1);
  }
}
