// The engine worker: owns the model and the context; the HTTP thread never calls llama_decode.
// Messages in are handled between steps; messages out are batched per step (one postMessage).
declare var self: Worker;

import type { Settings } from "../config.ts";
import { Context, Model, nativeInfo, setThreadScheduling } from "../native/index.ts";
import { contextOptions } from "./context-options.ts";
import { Engine } from "./engine.ts";
import type { FromEngine, ToEngine } from "./messages.ts";
import { resolveModelPath } from "./model-path.ts";
import { errorFields, logEvent } from "../log.ts";
import { llamaIdentity, openSessions } from "../sessions/open.ts";
import { modelFingerprint } from "../sessions/fingerprint.ts";
import { chooseAttention } from "./attention-probe.ts";
import { GrammarPool } from "../constraints/pool.ts";
import { vocabularyOf } from "../constraints/vocabulary.ts";

let outbox: FromEngine[] = [];
const post = (msg: FromEngine) => void outbox.push(msg);
const flush = () => {
  if (outbox.length === 0) return;
  const batch = outbox;
  outbox = [];
  self.postMessage(batch);
};

let engine: Engine | null = null;
const early: ToEngine[] = [];
let wake: (() => void) | null = null;
let stopping = false;

self.onmessage = (event: MessageEvent<ToEngine>) => {
  const msg = event.data;
  if (msg.type === "init") return void main(msg.settings).catch(fatal);
  if (!engine) return void early.push(msg);
  handle(engine, msg);
  flush();
  wake?.();
};

/** Posts what an asynchronous engine call resolves to, as soon as it does. */
const later = <T>(p: Promise<T>, make: (v: T) => FromEngine) => void p.then((v) => (post(make(v)), flush()));

function handle(e: Engine, msg: ToEngine): void {
  switch (msg.type) {
    case "submit": return e.submit(msg.ticket, msg.items, msg.onlyNewTokens, msg.config);
    case "abort": return e.abort(msg.ticket, msg.delivered);
    case "drop": return later(e.sessions.drop(msg.requestId), (found) => ({ type: "dropped", ticket: msg.ticket, found }));
    case "describe": return later(e.sessions.describe(msg.requestId), (info) => ({ type: "described", ticket: msg.ticket, info }));
    case "cut": return e.cut(msg.requestId, msg.length, msg.expect, msg.ticket);
    case "list": return post({ type: "listed", ticket: msg.ticket, list: e.sessions.list(msg.after, msg.limit) });
    case "stats": return post({ type: "stats", ticket: msg.ticket, stats: e.stats() });
    case "shutdown": stopping = true; return;
    case "init": return;
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

async function main(given: Settings): Promise<void> {
  let settings = given;
  if (settings.libPath) process.env.LLM_LIB_PATH = settings.libPath; // workers do not see the parent's env edits
  if (settings.httpSchedBatch) setThreadScheduling(false); // the HTTP thread's SCHED_BATCH is inherited: not for the engine and ggml's pool
  // llama.cpp writes load progress into shared memory the HTTP thread reads (this thread is busy loading)
  const progress = new Float32Array(new SharedArrayBuffer(4));
  post({ type: "loading", progress });
  flush();
  const path = await resolveModelPath(settings);
  const model = Model.load(path, { gpuLayers: settings.gpuLayers, progress });
  if (model.info.nCtxTrain > 0 && settings.ctxSize > model.info.nCtxTrain) {
    console.warn(`[engine] CTX_SIZE ${settings.ctxSize} exceeds the model's training context ${model.info.nCtxTrain}: quality may degrade past it`);
  }
  const info = nativeInfo();
  // FLASH_ATTN=-1: measured here (cached per model, library, backend and threads); from now on every
  // part of the engine, the KV blobs' identity included, sees the setting actually served
  const attention = chooseAttention(model, settings.flashAttn, {
    threads: settings.threads, threadPoll: settings.threadPoll, maxDepth: settings.ctxSize,
    cacheKey: [modelFingerprint(path), llamaIdentity(info.path, info.llamaVersion), info.systemInfo, settings.threads, settings.gpuLayers].join("|"),
  });
  settings = { ...settings, flashAttn: attention.flashAttn };
  const ctx = new Context(model, contextOptions(settings));
  const sessions = await openSessions(settings, path, info);
  sessions.onHealth = (degraded) => (post({ type: "health", degraded }), flush());
  // messages emitted outside a step (after a store read or write) go out at once, and wake the loop
  const grammars = () => new GrammarPool(vocabularyOf(path, model), { workers: settings.grammarWorkers, compileTimeoutMs: settings.grammarCompileTimeoutMs, workerUrl: settings.grammarWorkerUrl });
  engine = new Engine(model, ctx, settings, post, { sessions, flush: () => (flush(), wake?.()), grammars });
  if (sessions.degraded) post({ type: "health", degraded: sessions.degraded });
  if (settings.sessions.ttlS > 0) {
    const sweep = setInterval(() => void engine?.sessions.sweep(Date.now(), settings.sessions.ttlS).catch(failed), Math.min(1000, settings.sessions.ttlS * 250));
    sweep.unref?.();
  }
  post({
    type: "ready",
    model: {
      path, description: model.info.description, nVocab: model.info.nVocab, nCtxTrain: model.info.nCtxTrain,
      nParams: model.info.nParams, sizeBytes: model.info.sizeBytes, bos: model.info.bos, eos: model.info.eos,
      llamaVersion: info.llamaVersion, gpuOffload: info.gpuOffload, ctxSize: settings.ctxSize,
      parallel: settings.parallel, kvCells: ctx.nCtx, attention, chatTemplate: model.info.chatTemplate,
      bosText: model.tokenText(model.info.bos), eosText: model.tokenText(model.info.eos), controlTokens: model.controlTokens(),
    },
  });
  for (const msg of early.splice(0)) handle(engine, msg);
  flush();
  while (!stopping) {
    const t0 = performance.now();
    let worked = true;
    try {
      worked = engine.step();
    } catch (err) {
      logEvent("error", "step_failed", errorFields(err), "engine");
      engine.failRunning(err as Error);
    }
    const t1 = performance.now();
    flush();
    if (worked) {
      const t2 = performance.now();
      engine.recordStep((t2 - t0) * 1000, (t2 - t1) * 1000);
    }
    if (worked || engine.busy) await new Promise<void>((r) => setImmediate(r)); // let messages in
    else await new Promise<void>((r) => (wake = r)).then(() => (wake = null));
  }
  // shutdown: what still runs stops; every session's KV state is written before we go
  const closed = await engine.shutdown().catch((err) => (failed(err), { written: 0, failed: -1 }));
  post({ type: "closed", ...closed });
  flush();
  sessions.close();
  engine.runner.free();
  ctx.free();
  model.free();
  process.exit(0);
}

function failed(err: unknown): void {
  logEvent("error", "session_work_failed", errorFields(err), "engine");
}

function fatal(err: Error): void {
  post({ type: "fatal", message: err.message });
  flush();
}
