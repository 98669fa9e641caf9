// Turns workload results into table rows, with the targets of the issue marked met/missed.
import { decodeTps } from "./client.ts";
import type { Ceiling } from "./ceiling.ts";
import type { Plan } from "./plan.ts";
import type { Memory } from "./servers.ts";
import { median, percentile, ratio } from "./stats.ts";
import { fmt, fmtRatio, verdict, type Row } from "./table.ts";
import { overhead, type BeamResult, type ConcurrencyResult, type ContinuationResult, type LoadSummary, type SingleResult } from "./workloads.ts";

export interface Results {
  ceiling: Ceiling | null;
  /** npl=1 text-generation tokens/s measured right before and right after the short single-stream runs */
  ceilingAround: number[];
  short: SingleResult;
  long: SingleResult;
  conc: ConcurrencyResult[];
  sampled: ConcurrencyResult;
  cont: ContinuationResult;
  beam: BeamResult;
  memory: { ours: Memory; theirs: Memory };
  /** bench/engine-host.ts: the engine in-process, no HTTP (null when that run failed) */
  engineAlone: EngineAlone | null;
}

export interface EngineAlone {
  batch1PerStepMs: number;
  batch1DecodeMs: number;
  batch16PerSeqUs: number;
  batch16DecodeMs: number;
  batch16: number;
}

function row(workload: string, metric: string, ours: number, theirs: number, digits: number, target = "", ok: boolean | null | undefined = undefined): Row {
  return {
    workload, metric, ours: fmt(ours, digits), theirs: fmt(theirs, digits), ratio: fmtRatio(ratio(ours, theirs)), target,
    status: target ? verdict(ok ?? null) : "",
  };
}

const atLeast = (x: number, min: number): boolean | null => (Number.isFinite(x) ? x >= min : null);
const atMost = (x: number, max: number): boolean | null => (Number.isFinite(x) ? x <= max : null);

function singleRows(name: string, r: SingleResult, withTargets: boolean, ceilingTps: number): Row[] {
  const ours = median(r.ours.map(decodeTps));
  const theirs = median(r.theirs.map(decodeTps));
  const rows = [
    row(name, "decode tokens/s (median)", ours, theirs, 2, withTargets ? "≥ 0.97× llama-server" : "", atLeast(ratio(ours, theirs), 0.97)),
    row(name, "TTFT ms (median)", median(r.ours.map((t) => t.ttftMs)), median(r.theirs.map((t) => t.ttftMs)), 1),
  ];
  if (withTargets) {
    const x = ratio(ours, ceilingTps);
    rows.push({
      workload: name, metric: "decode tokens/s vs engine ceiling (batched-bench npl=1)", ours: fmt(ours, 2),
      theirs: `ceiling ${fmt(ceilingTps, 2)} (llama-server: ${fmtRatio(ratio(theirs, ceilingTps))} of it)`, ratio: `${fmtRatio(x)} of ceiling`, target: "≥ 0.95× ceiling", status: verdict(atLeast(x, 0.95)),
    });
  }
  return rows;
}

function loadRows(name: string, ours: LoadSummary[], theirs: LoadSummary[], aggTarget: boolean): Row[] {
  const m = (xs: LoadSummary[], k: keyof LoadSummary) => median(xs.map((s) => s[k]));
  const agg = [m(ours, "aggTps"), m(theirs, "aggTps")] as const;
  return [
    row(name, "aggregate output tokens/s", agg[0], agg[1], 2, aggTarget ? "≥ 1.0× llama-server" : "", atLeast(ratio(agg[0], agg[1]), 1.0)),
    row(name, "TTFT p50 ms", m(ours, "ttftP50"), m(theirs, "ttftP50"), 1),
    row(name, "time per output token p50 ms", m(ours, "tpotP50"), m(theirs, "tpotP50"), 1),
    row(name, "time per output token p99 ms", m(ours, "tpotP99"), m(theirs, "tpotP99"), 1),
  ];
}

export function buildRows(plan: Plan, r: Results): Row[] {
  const ceiling1 = median([r.ceiling?.rows.find((c) => c.npl === 1)?.tgTps ?? NaN, ...r.ceilingAround].filter(Number.isFinite));
  const rows: Row[] = [
    ...singleRows(`single stream, ${plan.shortPrompt}-token prompt, ${plan.shortTokens} out`, r.short, true, ceiling1),
    ...singleRows(`single stream, ${plan.longPrompt}-token prompt, ${plan.longTokens} out`, r.long, false, ceiling1),
  ];
  for (const c of r.conc) {
    rows.push(...loadRows(`concurrency ${c.concurrency} (greedy, ${plan.concTokens} out × ${plan.perClient}/client)`, c.ours, c.theirs, c.concurrency === 8));
  }
  rows.push(...loadRows(`concurrency ${r.sampled.concurrency}, sampled (T 0.8, top-k 40, top-p 0.95)`, r.sampled.ours, r.sampled.theirs, false));

  const cold = median(r.cont.oursCold);
  const warm = median(r.cont.oursWarm);
  const contName = `continuation after a ${plan.contPrompt}-token prompt`;
  rows.push(
    { workload: contName, metric: "cold TTFT ms (ours: new request_id; llama-server: cache_prompt, first time)", ours: fmt(cold, 1), theirs: fmt(median(r.cont.theirsCold), 1), ratio: fmtRatio(ratio(cold, median(r.cont.theirsCold))), target: "", status: "" },
    { workload: contName, metric: "continuation TTFT ms (ours: same request_id; llama-server: same prompt, cache_prompt)", ours: fmt(warm, 1), theirs: fmt(median(r.cont.theirsWarm), 1), ratio: fmtRatio(ratio(warm, median(r.cont.theirsWarm))), target: "", status: "" },
    { workload: contName, metric: "continuation TTFT / cold TTFT", ours: `${fmt(100 * ratio(warm, cold), 1)} %`, theirs: `${fmt(100 * ratio(median(r.cont.theirsWarm), median(r.cont.theirsCold)), 1)} % (reference)`, ratio: "", target: "≤ 10 % of cold", status: verdict(atMost(ratio(warm, cold), 0.1)) },
  );

  const beamName = `beam search, num_beams ${plan.numBeams}, ${plan.beamTokens} out`;
  if (r.beam.status === "n/a") rows.push({ workload: beamName, metric: "latency ms", ours: "n/a (not implemented)", theirs: "–", ratio: "", target: "", status: "" });
  else {
    const lat = median(r.beam.latencyMs);
    rows.push(
      { workload: beamName, metric: "request latency ms (median)", ours: fmt(lat, 1), theirs: "–", ratio: "", target: "", status: "" },
      { workload: beamName, metric: "output tokens/s (max_new_tokens / latency)", ours: fmt((r.beam.tokens * 1000) / lat, 2), theirs: "–", ratio: "", target: "", status: "" },
    );
  }

  const o1 = overhead(r.short.oursDelta);
  const c16 = r.conc.find((c) => c.concurrency === 16) ?? r.conc[r.conc.length - 1]!;
  const o16 = overhead(c16.oursDelta);
  const d1 = r.short.oursDelta;
  const decodeMs1 = d1.decodeUs / d1.steps / 1000;
  const ceilMs1 = 1000 / ceiling1;
  rows.push(
    { workload: "llama_decode time, batch 1 (single stream runs)", metric: "Δ decodeUs / Δ steps, ms/step, each request's prompt step included (llama-server column: 1000 / ceiling npl=1 t/s, the median of three runs)", ours: fmt(decodeMs1, 2), theirs: `ceiling ${fmt(ceilMs1, 2)}`, ratio: fmtRatio(ratio(decodeMs1, ceilMs1)), target: "", status: "" },
    { workload: "host overhead, batch 1 (single stream runs)", metric: "(Δ stepUs − Δ decodeUs) / Δ steps, ms/step", ours: fmt(o1.perStepMs, 3), theirs: "–", ratio: "", target: "≤ 0.3 ms/step", status: verdict(atMost(o1.perStepMs, 0.3)) },
    { workload: `host overhead, concurrency ${c16.concurrency} runs`, metric: `per sequence per step, µs (mean batch ${fmt(o16.meanBatch, 1)}; ${fmt(o16.perStepMs, 3)} ms/step)`, ours: fmt(o16.perSeqUs, 1), theirs: "–", ratio: "", target: "≤ 20 µs/sequence", status: verdict(atMost(o16.perSeqUs, 20)) },
    { workload: `host overhead, concurrency ${c16.concurrency} runs`, metric: "of which posting each step's messages to the HTTP thread (postMessage), µs per sequence", ours: fmt(c16.oursDelta.postUs / c16.oursDelta.sequenceSteps, 1), theirs: "–", ratio: "", target: "", status: "" },
  );
  const e = r.engineAlone;
  if (e) {
    rows.push(
      { workload: "profile: engine alone (in-process, no HTTP, no client), batch 1", metric: `host ms/step (llama_decode ${fmt(e.batch1DecodeMs, 2)} ms/step)`, ours: fmt(e.batch1PerStepMs, 3), theirs: "–", ratio: "", target: "", status: "" },
      { workload: `profile: engine alone (in-process, no HTTP, no client), batch ${fmt(e.batch16, 0)}`, metric: `host µs per sequence per step (llama_decode ${fmt(e.batch16DecodeMs, 2)} ms/step)`, ours: fmt(e.batch16PerSeqUs, 1), theirs: "–", ratio: "", target: "", status: "" },
    );
  }

  const h = c16.healthMs;
  const p99 = percentile(h, 99);
  rows.push({
    workload: `/health while at concurrency ${c16.concurrency}`, metric: `p99 ms (p50 ${fmt(percentile(h, 50), 1)}, max ${fmt(Math.max(...h), 1)}, ${h.length} polls, ${c16.healthFailures} failed)`,
    ours: fmt(p99, 1), theirs: "–", ratio: "", target: "≤ 20 ms", status: verdict(h.length > 0 && c16.healthFailures === 0 ? p99 <= 20 : null),
  });
  rows.push(
    row("resident memory after load (ours: bun process tree)", "VmRSS MiB", r.memory.ours.rssMiB, r.memory.theirs.rssMiB, 0),
    row("resident memory after load (ours: bun process tree)", "VmHWM (peak) MiB", r.memory.ours.peakMiB, r.memory.theirs.peakMiB, 0),
  );
  return rows;
}
