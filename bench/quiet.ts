// Both servers stay up for the whole run, so one can disturb the other's measurement: llama-server's
// thread pool spins (ggml poll 50, its default) for ~100+ ms after its last request, taking one of the
// two cores from whatever runs next. Before measuring one server we wait until the other is quiet.
import { readdirSync, readFileSync } from "node:fs";
import { processTree } from "./servers.ts";

/** CPU time of a process tree so far, in ms (per-thread schedstat: nanosecond resolution). */
export function cpuMs(root: number): number {
  let ns = 0;
  for (const pid of processTree(root)) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {} // thread or process gone meanwhile
  }
  return ns / 1e6;
}

export const waits = { count: 0, totalMs: 0, maxMs: 0, timeouts: 0 };

/** Waits until `pid`'s tree uses under 5 % of one core over 50 ms (at most `limitMs`). */
export async function untilQuiet(pid: number, limitMs = 2000): Promise<void> {
  const t0 = performance.now();
  let before = cpuMs(pid);
  for (;;) {
    await Bun.sleep(50);
    const now = cpuMs(pid);
    const busy = now - before;
    before = now;
    const waited = performance.now() - t0;
    if (busy < 2.5 || waited > limitMs) {
      waits.count++;
      waits.totalMs += waited;
      waits.maxMs = Math.max(waits.maxMs, waited);
      if (busy >= 2.5) waits.timeouts++;
      return;
    }
  }
}
