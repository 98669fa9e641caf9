// Linux scheduling class of the calling thread. The HTTP thread runs as SCHED_BATCH so that waking
// it (every decode step posts tokens to it) does not preempt the engine thread it was woken by: on a
// 2-core machine that preemption cost ~250 us per step at batch 16 (the wake put the HTTP thread's
// whole message handling inside the engine's step). SCHED_BATCH keeps normal fairness; the thread
// just waits for a free core or the next tick instead of preempting. Threads inherit the class from
// the thread that starts them, so the engine worker sets itself (and thus ggml's pool) back to normal.
import { dlopen, FFIType, ptr } from "bun:ffi";

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

/** Puts the calling thread in SCHED_BATCH (`batch`) or back in SCHED_OTHER; false where that is not possible (not Linux, no libc). */
export function setThreadScheduling(batch: boolean): boolean {
  if (process.platform !== "linux") return false;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      const libc = dlopen(name, { sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 } });
      const param = new Int32Array(1); // sched_priority 0
      const ok = libc.symbols.sched_setscheduler(0, batch ? SCHED_BATCH : SCHED_OTHER, ptr(param)) === 0; // 0 = this thread
      libc.close();
      return ok;
    } catch {} // try the next name
  }
  return false;
}
