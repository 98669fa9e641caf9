// The measured workloads. Every comparison alternates A/B per repetition: ours, then llama-server.
import type { EngineStats } from "../src/engine/messages.ts";
import { closedLoop, GREEDY, HttpFailure, oursGenerate, theirsGenerate, tpotMs, type LoadResult, type Sampling, type Timing } from "./client.ts";
import type { PromptSet } from "./prompts.ts";
import { untilQuiet } from "./quiet.ts";
import type { BenchServer, OurServer } from "./servers.ts";
import { percentile, sum } from "./stats.ts";

/** Things that looked wrong while measuring (token counts, errors); printed under the table. */
export const findings: string[] = [];

/** How many token-count checks passed (ours: /api/stats per run; llama-server: tokens_predicted per request). */
export const verified = { oursRuns: 0, theirsRequests: 0 };

/** Progress lines (run.ts points this at stderr). */
export const hooks = {
  progress: (_msg: string): void => {},
  /** true once the run is out of time: loops stop after the repetition in progress */
  outOfTime: (): boolean => false,
};

let serial = 0;
const runTag = Date.now().toString(36);
/** A request_id never used before (so no cache hit unless a workload wants one). */
export function freshId(what: string): string {
  return `bench-${runTag}-${what}-${serial++}`;
}

export interface StatsDelta {
  steps: number;
  stepUs: number;
  postUs: number;
  decodeUs: number;
  sequenceSteps: number;
  tokensGenerated: number;
}

export const ZERO_DELTA: StatsDelta = { steps: 0, stepUs: 0, postUs: 0, decodeUs: 0, sequenceSteps: 0, tokensGenerated: 0 };

export function addDelta(a: StatsDelta, before: EngineStats, after: EngineStats): StatsDelta {
  return {
    steps: a.steps + after.steps - before.steps,
    stepUs: a.stepUs + after.stepUs - before.stepUs,
    postUs: a.postUs + after.postUs - before.postUs,
    decodeUs: a.decodeUs + after.decodeUs - before.decodeUs,
    sequenceSteps: a.sequenceSteps + after.sequenceSteps - before.sequenceSteps,
    tokensGenerated: a.tokensGenerated + after.tokensGenerated - before.tokensGenerated,
  };
}

/** Host overhead per step (ms) and per sequence-in-step (µs) from a stats delta. */
export function overhead(d: StatsDelta): { perStepMs: number; perSeqUs: number; meanBatch: number } {
  const perStepUs = (d.stepUs - d.decodeUs) / d.steps;
  const meanBatch = d.sequenceSteps / d.steps;
  return { perStepMs: perStepUs / 1000, perSeqUs: perStepUs / meanBatch, meanBatch };
}

/** Runs one measured piece on our server with /api/stats snapshots around it; checks the token count. */
async function withStats<T>(ours: OurServer, label: string, expectTokens: (r: T) => number, fn: () => Promise<T>, acc: { delta: StatsDelta }): Promise<T> {
  const before = await ours.stats();
  const r = await fn();
  const after = await ours.stats();
  acc.delta = addDelta(acc.delta, before, after);
  const got = after.tokensGenerated - before.tokensGenerated;
  const want = expectTokens(r);
  if (got !== want) findings.push(`${label}: our server generated ${got} tokens per /api/stats, expected ${want}`);
  else verified.oursRuns++;
  return r;
}

function checkTheirs(label: string, results: Timing[], want: number): void {
  const bad = results.filter((t) => t.tokens !== want);
  if (bad.length > 0) findings.push(`${label}: llama-server returned ${bad.map((t) => t.tokens).join(",")} tokens, expected ${want}`);
  verified.theirsRequests += results.length - bad.length;
}

export interface SingleResult {
  ours: Timing[];
  theirs: Timing[];
  oursDelta: StatsDelta;
}

/** One stream at a time: reps × (ours, theirs). */
export async function singleStream(ours: OurServer, theirs: BenchServer, prompts: PromptSet, nTokens: number, reps: number): Promise<SingleResult> {
  const acc = { delta: ZERO_DELTA };
  const out: SingleResult = { ours: [], theirs: [], oursDelta: ZERO_DELTA };
  for (let rep = 0; rep < reps && !(rep > 0 && hooks.outOfTime()); rep++) {
    const prompt = prompts.get(rep);
    const label = `single ${prompts.name} rep ${rep}`;
    await untilQuiet(theirs.pid);
    out.ours.push(await withStats(ours, label, () => nTokens, () => oursGenerate(ours.url, { requestId: freshId("single"), prompt, maxNewTokens: nTokens }), acc));
    await untilQuiet(ours.pid);
    out.theirs.push(await theirsGenerate(theirs.url, { prompt, nPredict: nTokens }));
  }
  checkTheirs(`single ${prompts.name}`, out.theirs, nTokens);
  out.oursDelta = acc.delta;
  return out;
}

export interface LoadSummary {
  aggTps: number;
  ttftP50: number;
  tpotP50: number;
  tpotP99: number;
}

export function summarize(r: LoadResult): LoadSummary {
  const tpots = r.results.map(tpotMs);
  return {
    aggTps: (sum(r.results.map((t) => t.tokens)) * 1000) / r.wallMs,
    ttftP50: percentile(r.results.map((t) => t.ttftMs), 50),
    tpotP50: percentile(tpots, 50),
    tpotP99: percentile(tpots, 99),
  };
}

export interface ConcurrencyResult {
  concurrency: number;
  ours: LoadSummary[];
  theirs: LoadSummary[];
  oursDelta: StatsDelta;
  /** /health latencies measured on ours during its runs (when probed) */
  healthMs: number[];
  healthFailures: number;
}

export interface ConcurrencyOptions {
  concurrency: number;
  perClient: number;
  nTokens: number;
  reps: number;
  sampling?: Sampling;
  probeHealth?: boolean;
  /** called after each of our runs, while the server still holds its peak memory */
  afterOurs?: () => void;
  afterTheirs?: () => void;
}

async function startProbe(url: string) {
  const proc = Bun.spawn([process.execPath, `${import.meta.dir}/health-probe.ts`, url, "10"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  await Bun.sleep(150); // let it start polling before the load begins
  return async () => {
    proc.stdin.end();
    const text = await new Response(proc.stdout).text();
    await proc.exited;
    return JSON.parse(text) as { latenciesMs: number[]; failures: number };
  };
}

/** Closed-loop load at a fixed concurrency: reps × (ours, theirs). */
export async function concurrencyRun(ours: OurServer, theirs: BenchServer, prompts: PromptSet, o: ConcurrencyOptions): Promise<ConcurrencyResult> {
  const sampling = o.sampling ?? GREEDY;
  const tag = `c${o.concurrency}${sampling.doSample ? "-sampled" : ""}`;
  const acc = { delta: ZERO_DELTA };
  const out: ConcurrencyResult = { concurrency: o.concurrency, ours: [], theirs: [], oursDelta: ZERO_DELTA, healthMs: [], healthFailures: 0 };
  const promptOf = (rep: number, client: number, k: number) => prompts.get((rep * o.concurrency + client) * o.perClient + k);
  for (let rep = 0; rep < o.reps && !(rep > 0 && hooks.outOfTime()); rep++) {
    await untilQuiet(theirs.pid);
    const stopProbe = o.probeHealth ? await startProbe(ours.url) : null;
    const r = await withStats(ours, `${tag} rep ${rep}`, (x: LoadResult) => x.results.length * o.nTokens, () =>
      closedLoop(o.concurrency, o.perClient, (c, k) =>
        oursGenerate(ours.url, { requestId: freshId(tag), prompt: promptOf(rep, c, k), maxNewTokens: o.nTokens, sampling, seed: sampling.doSample ? rep * 1000 + c : undefined })), acc);
    if (stopProbe) {
      const h = await stopProbe();
      out.healthMs.push(...h.latenciesMs);
      out.healthFailures += h.failures;
    }
    o.afterOurs?.();
    out.ours.push(summarize(r));
    await untilQuiet(ours.pid);
    const t = await closedLoop(o.concurrency, o.perClient, (c, k) =>
      theirsGenerate(theirs.url, { prompt: promptOf(rep, c, k), nPredict: o.nTokens, sampling, seed: rep * 1000 + c }));
    o.afterTheirs?.();
    checkTheirs(`${tag} rep ${rep}`, t.results, o.nTokens);
    out.theirs.push(summarize(t));
    hooks.progress(`${tag} rep ${rep}: ours ${out.ours[rep]!.aggTps.toFixed(1)} t/s in ${(r.wallMs / 1000).toFixed(1)} s, llama-server ${out.theirs[rep]!.aggTps.toFixed(1)} t/s in ${(t.wallMs / 1000).toFixed(1)} s`);
  }
  out.oursDelta = acc.delta;
  return out;
}

export interface ContinuationResult {
  oursCold: number[];
  oursWarm: number[];
  theirsCold: number[];
  theirsWarm: number[];
}

/**
 * Ours: a cold request (long prompt, a few tokens), then the same request_id again: TTFT of
 * the continuation vs the cold TTFT. llama-server for reference: the same prompt twice with cache_prompt.
 */
export async function continuation(ours: OurServer, theirs: BenchServer, prompts: PromptSet, o: { firstTokens: number; nTokens: number; reps: number }): Promise<ContinuationResult> {
  const out: ContinuationResult = { oursCold: [], oursWarm: [], theirsCold: [], theirsWarm: [] };
  const acc = { delta: ZERO_DELTA };
  for (let rep = 0; rep < o.reps && !(rep > 0 && hooks.outOfTime()); rep++) {
    const prompt = prompts.get(100 + rep);
    const requestId = freshId("continue");
    await untilQuiet(theirs.pid);
    const cold = await withStats(ours, `continuation cold rep ${rep}`, () => o.firstTokens, () => oursGenerate(ours.url, { requestId, prompt, maxNewTokens: o.firstTokens }), acc);
    const warm = await withStats(ours, `continuation warm rep ${rep}`, () => o.nTokens, () => oursGenerate(ours.url, { requestId, prompt, maxNewTokens: o.nTokens }), acc);
    out.oursCold.push(cold.ttftMs);
    out.oursWarm.push(warm.ttftMs);
    await untilQuiet(ours.pid);
    const tc = await theirsGenerate(theirs.url, { prompt, nPredict: o.firstTokens, cachePrompt: true });
    const tw = await theirsGenerate(theirs.url, { prompt, nPredict: o.nTokens, cachePrompt: true });
    out.theirsCold.push(tc.ttftMs);
    out.theirsWarm.push(tw.ttftMs);
  }
  return out;
}

export type BeamResult = { status: "n/a"; reason: string } | { status: "ok"; latencyMs: number[]; ttftMs: number[]; tokens: number };

/** Beam search (ours only). A 422 means "not implemented yet": reported, not a failure. */
export async function beamSearch(ours: OurServer, prompts: PromptSet, o: { numBeams: number; nTokens: number; reps: number }): Promise<BeamResult> {
  const latencyMs: number[] = [];
  const ttftMs: number[] = [];
  for (let rep = 0; rep < o.reps && !(rep > 0 && hooks.outOfTime()); rep++) {
    try {
      const t = await oursGenerate(ours.url, { requestId: freshId("beam"), prompt: prompts.get(rep), maxNewTokens: o.nTokens, numBeams: o.numBeams });
      latencyMs.push(t.totalMs);
      ttftMs.push(t.ttftMs);
    } catch (err) {
      if (err instanceof HttpFailure && err.status === 422) return { status: "n/a", reason: err.body };
      throw err;
    }
  }
  return { status: "ok", latencyMs, ttftMs, tokens: o.nTokens };
}
