// The llama context the settings ask for (used by the worker, and by the in-process profile).
import type { Settings } from "../config.ts";
import type { ContextOptions } from "../native/index.ts";

export function contextOptions(settings: Settings): ContextOptions {
  return {
    nCtx: settings.kvCells, nBatch: settings.batchSize, nSeqMax: settings.cacheSequences, threads: settings.threads || undefined,
    threadsBatch: settings.threadsBatch || undefined, flashAttn: settings.flashAttn, kvUnified: settings.kvUnified, threadPoll: settings.threadPoll,
  };
}
