// /api/stats: the engine's counters and the sequence table's census, read on demand (never in a step).
import type { Settings } from "../config.ts";
import type { SessionManager } from "../sessions/manager.ts";
import type { EngineStats } from "./messages.ts";
import type { Runner } from "./runner.ts";
import type { SequenceTable } from "./seq-table.ts";
import { SeqState } from "./sequence.ts";

/** What the engine counts as it steps (besides the table's and the runner's own counters). */
export interface StepCounters {
  steps: number;
  /** wall time of steps and of posting their messages, microseconds */
  stepUs: number;
  postUs: number;
  /** sequences fed in all steps together */
  sequenceSteps: number;
  tokensGenerated: number;
}

export function engineStats(table: SequenceTable, runner: Runner, manager: SessionManager, settings: Settings, c: StepCounters): EngineStats {
  let running = 0, queued = 0, entries = 0, kvCellsUsed = 0;
  for (const s of table.all()) {
    entries++;
    if (s.state === SeqState.Running) running++;
    else if (s.state === SeqState.Queued) queued++;
    if (s.seqId >= 0) kvCellsUsed += s.nPast;
  }
  return {
    running, queued, cachedSequences: entries - running - queued, kvCellsUsed, kvCells: settings.kvCells,
    evictions: table.evictions, prefixHits: table.prefixHits, prefixTokens: table.prefixTokens, prefixTakeovers: table.inherited,
    steps: c.steps, tokensGenerated: c.tokensGenerated, stepUs: Math.round(c.stepUs), postUs: Math.round(c.postUs),
    decodeUs: Math.round(runner.decodeUs), sequenceSteps: c.sequenceSteps, idRuns: runner.idRuns, slotSwaps: table.compactions,
    sessions: { ...manager.counters, storeErrors: manager.storeErrors, trimmedEntries: table.trimmed, ...manager.ramStats(), store: manager.storeName, degraded: manager.degraded },
  };
}
