// Linux scheduling class of the calling thread. The HTTP thread runs as SCHED_BATCH so that waking
// it (every decode step posts tokens to it) does not preempt the engine thread it was woken by: on a
// 2-core machine that preemption cost ~250 us per step at batch 16 (the wake put the HTTP thread's
// whole message handling inside the engine's step). SCHED_BATCH keeps normal fairness; the thread
// just waits for a free core or the next tick instead of preempting. Threads inherit the class from
// the thread that starts them, so the engine worker sets itself (and thus ggml's pool) back to normal.
import { ptr } from "bun:ffi";
import { libc } from "./lib.ts";

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

/** Puts the calling thread in SCHED_BATCH (`batch`) or back in SCHED_OTHER; false where that is not possible (not Linux, no libc). */
export function setThreadScheduling(batch: boolean): boolean {
  const c = libc();
  if (!c) return false;
  const param = new Int32Array(1); // sched_priority 0
  return c.sched_setscheduler(0, batch ? SCHED_BATCH : SCHED_OTHER, ptr(param)) === 0; // pid 0 = this thread
}
