// Sizes of the benchmark: the full run (fits in 10 minutes on 2 cores) and the --quick smoke run.

export interface Plan {
  name: "full" | "quick";
  reps: number;
  threads: number;
  parallel: number;
  /** tokens per sequence on both servers */
  ctx: number;
  shortPrompt: number;
  shortTokens: number;
  longPrompt: number;
  longTokens: number;
  concurrency: number[];
  concTokens: number;
  /** requests per client in the closed loop */
  perClient: number;
  sampledConcurrency: number;
  contPrompt: number;
  contFirstTokens: number;
  contTokens: number;
  numBeams: number;
  beamTokens: number;
  ceiling: { npp: number; ntg: number; npl: number[] };
}

export const FULL: Plan = {
  name: "full",
  reps: 9,
  threads: 2,
  parallel: 16,
  ctx: 2048,
  shortPrompt: 32,
  shortTokens: 64,
  longPrompt: 512,
  longTokens: 16,
  concurrency: [4, 8, 16],
  concTokens: 32,
  perClient: 2,
  sampledConcurrency: 8,
  contPrompt: 1000,
  contFirstTokens: 4,
  contTokens: 8,
  numBeams: 4,
  beamTokens: 16,
  ceiling: { npp: 32, ntg: 64, npl: [1, 4, 8, 16] },
};

export const QUICK: Plan = {
  ...FULL,
  name: "quick",
  reps: 1,
  perClient: 1,
  shortTokens: 16,
  longPrompt: 128,
  longTokens: 8,
  concTokens: 8,
  contPrompt: 256,
  contFirstTokens: 2,
  contTokens: 4,
  beamTokens: 8,
  ceiling: { npp: 32, ntg: 16, npl: [1, 4] },
};

/** Fewest repetitions allowed (medians of at least 3 runs), used when the run falls behind its time budget. */
export const MIN_REPS = 3;
/** After this many seconds, workloads still to come run MIN_REPS repetitions (full run: 10-minute budget). */
export const SLOW_AFTER_S = 300;

/** Past this many seconds, remaining workloads are skipped (shown as "–"), so a run on a busy machine still ends near 10 minutes. */
export const HARD_STOP_S = 540;

export function planFromArgs(argv: string[]): Plan {
  const plan = argv.includes("--quick") ? { ...QUICK } : { ...FULL };
  const reps = argv.find((a) => a.startsWith("--reps="));
  if (reps) plan.reps = Math.max(1, Number(reps.slice(7)) | 0);
  return plan;
}
