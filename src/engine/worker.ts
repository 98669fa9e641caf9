// The engine worker: owns the model and the context; the HTTP thread never calls llama_decode.
// Messages in are handled between steps; messages out are batched per step (one postMessage).
declare var self: Worker;

import type { Settings } from "../config.ts";
import { Context, Model, nativeInfo, setThreadScheduling } from "../native/index.ts";
import { contextOptions, Engine } from "./engine.ts";
import type { FromEngine, ToEngine } from "./messages.ts";
import { resolveModelPath } from "./model-path.ts";

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

function handle(e: Engine, msg: ToEngine): void {
  switch (msg.type) {
    case "submit": return e.submit(msg.ticket, msg.items, msg.onlyNewTokens, msg.config);
    case "abort": return e.abort(msg.ticket);
    case "drop": return post({ type: "dropped", ticket: msg.ticket, found: e.drop(msg.requestId) });
    case "describe": return post({ type: "described", ticket: msg.ticket, info: e.describe(msg.requestId) });
    case "stats": return post({ type: "stats", ticket: msg.ticket, stats: e.stats() });
    case "shutdown": stopping = true; return;
    case "init": return;
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

async function main(settings: Settings): Promise<void> {
  if (settings.libPath) process.env.LLM_LIB_PATH = settings.libPath; // workers do not see the parent's env edits
  if (settings.httpSchedBatch) setThreadScheduling(false); // the HTTP thread's SCHED_BATCH is inherited: not for the engine and ggml's pool
  // llama.cpp writes load progress into shared memory the HTTP thread reads (this thread is busy loading)
  const progress = new Float32Array(new SharedArrayBuffer(4));
  post({ type: "loading", progress });
  flush();
  const path = await resolveModelPath(settings.modelPath);
  const model = Model.load(path, { gpuLayers: settings.gpuLayers, progress });
  if (model.info.nCtxTrain > 0 && settings.ctxSize > model.info.nCtxTrain) {
    console.warn(`[engine] CTX_SIZE ${settings.ctxSize} exceeds the model's training context ${model.info.nCtxTrain}: quality may degrade past it`);
  }
  const ctx = new Context(model, contextOptions(settings));
  engine = new Engine(model, ctx, settings, post);
  const info = nativeInfo();
  post({
    type: "ready",
    model: {
      path, description: model.info.description, nVocab: model.info.nVocab, nCtxTrain: model.info.nCtxTrain,
      nParams: model.info.nParams, sizeBytes: model.info.sizeBytes, bos: model.info.bos, eos: model.info.eos,
      llamaVersion: info.llamaVersion, gpuOffload: info.gpuOffload, ctxSize: settings.ctxSize,
      parallel: settings.parallel, kvCells: ctx.nCtx,
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
      console.error("[engine] step failed:", err);
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
  engine.runner.free();
  ctx.free();
  model.free();
  process.exit(0);
}

function fatal(err: Error): void {
  post({ type: "fatal", message: err.message });
  flush();
}
