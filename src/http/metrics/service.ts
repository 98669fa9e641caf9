// Prometheus metrics (prom-client). Names follow vLLM's (prefix `vllm:`) where vLLM has the metric,
// so its dashboards fit; the server's own (sessions, tiers) use `llm_server:`. Everything per token
// is observed here on the HTTP thread, from the engine client's messages: the engine thread pays
// nothing. Gauges are read from the engine's stats once per scrape.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EngineClient } from "../../engine/client.ts";
import type { RequestObserver } from "../../engine/request-handlers.ts";
import type { EngineStats, FinishReason } from "../../engine/messages.ts";

// vLLM's buckets, in seconds
const TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const E2E = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

/** what the engine's finish reasons count as (vLLM's finished_reason label) */
const FINISHED: Record<FinishReason, string> = { eos: "stop", length: "length", context: "length", aborted: "abort" };

interface Timing {
  submitted: number;
  started: number;
  last: number;
}

export class Metrics implements RequestObserver {
  readonly registry = new Registry();
  /** per ticket, one timing per item (no per-token key strings), and how many items are still open */
  readonly #timings = new Map<number, { items: Timing[]; open: number }>();
  readonly #ttft: Histogram;
  readonly #itl: Histogram;
  readonly #e2e: Histogram;
  readonly #queue: Histogram;
  readonly #prompt: Counter;
  readonly #generation: Counter;
  readonly #success: Counter<"finished_reason">;
  readonly #failed: Counter<"status">;
  #stats: Promise<EngineStats | null> | null = null;

  constructor(private readonly engine: EngineClient) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry }); // process memory, CPU, event loop lag
    this.#ttft = new Histogram({ name: "vllm:time_to_first_token_seconds", help: "Time to first token, from submission", buckets: TTFT, registers });
    this.#itl = new Histogram({ name: "vllm:inter_token_latency_seconds", help: "Time between consecutive tokens of a sequence", buckets: ITL, registers });
    this.#e2e = new Histogram({ name: "vllm:e2e_request_latency_seconds", help: "Submission to the last token", buckets: E2E, registers });
    this.#queue = new Histogram({ name: "vllm:request_queue_time_seconds", help: "Time waiting for a slot", buckets: E2E, registers });
    this.#prompt = new Counter({ name: "vllm:prompt_tokens_total", help: "Prompt tokens of finished sequences", registers });
    this.#generation = new Counter({ name: "vllm:generation_tokens_total", help: "Generated tokens of finished sequences", registers });
    this.#success = new Counter({ name: "vllm:request_success_total", help: "Finished sequences by reason", labelNames: ["finished_reason"], registers });
    this.#failed = new Counter({ name: "llm_server:request_errors_total", help: "Requests refused or failed, by HTTP status", labelNames: ["status"], registers });
    const gauge = (name: string, help: string, read: (s: EngineStats) => number) =>
      new Gauge({ name, help, registers, collect: async function () { const s = await metrics.#scrape(); if (s) this.set(read(s)); } });
    const gaugeByTier = (name: string, help: string, read: (s: EngineStats) => Record<string, number>) =>
      new Gauge({
        name, help, labelNames: ["tier"], registers,
        collect: async function () {
          const s = await metrics.#scrape();
          if (s) for (const [tier, v] of Object.entries(read(s))) this.set({ tier }, v);
        },
      });
    // engine totals as counters: set from the engine's own count at each scrape
    const total = (name: string, help: string, read: (s: EngineStats) => Record<string, number>, labelNames: string[] = []) =>
      new Counter({
        name, help, labelNames, registers,
        collect: async function () {
          const s = await metrics.#scrape();
          if (!s) return;
          this.reset();
          for (const [label, v] of Object.entries(read(s))) labelNames.length ? this.inc({ [labelNames[0]!]: label }, v) : this.inc(v);
        },
      });
    const metrics = this;
    gauge("vllm:num_requests_running", "Sequences decoding now", (s) => s.running);
    gauge("vllm:num_requests_waiting", "Sequences waiting for a slot", (s) => s.queued);
    gauge("vllm:kv_cache_usage_perc", "Share of KV cells in use (0..1)", (s) => (s.kvCells ? s.kvCellsUsed / s.kvCells : 0));
    total("vllm:prefix_cache_hits_total", "Prompt tokens taken from a shared cached prefix instead of decoded", (s) => ({ all: s.prefixTokens }));
    total("llm_server:prefix_reuse_total", "New sequences that started from a copied shared prefix", (s) => ({ all: s.prefixHits }));
    total("llm_server:kv_cache_evictions_total", "Cached sequences evicted from the KV cache", (s) => ({ all: s.evictions }));
    gaugeByTier("llm_server:sessions", "Sessions per tier", (s) => ({ kv: s.cachedSequences, ram: s.sessions.ramSessions, store: s.sessions.storeSessions }));
    gaugeByTier("llm_server:session_bytes", "Bytes of saved KV state per tier", (s) => ({ ram: s.sessions.ramBytes, store: s.sessions.storeBytes }));
    total("llm_server:session_restores_total", "KV states restored, by the tier they came from", (s) => ({ ram: s.sessions.restoredFromRam, store: s.sessions.restoredFromStore }), ["tier"]);
    total("llm_server:session_recomputed_total", "Continuations that decoded their tokens again", (s) => ({ all: s.sessions.recomputed }));
    total("llm_server:session_drops_total", "Sessions or states dropped, by cause", (s) => ({ ram_full: s.sessions.droppedRam, store_full: s.sessions.droppedStore, expired: s.sessions.expired }), ["cause"]);
    total("llm_server:session_store_errors_total", "Failed or timed-out operations on the session store", (s) => ({ all: s.sessions.storeErrors }));
    gauge("llm_server:session_store_degraded", "1 while the session store is unusable (generation goes on from RAM)", (s) => (s.sessions.degraded ? 1 : 0));
    // leases live on this thread: read directly, no engine call
    const leases = engine.leases;
    if (leases) {
      new Gauge({ name: "llm_server:session_leases_held", help: "request_ids this replica holds a Redis lease on (generating now)", registers, collect() { this.set(leases.held); } });
      new Counter({
        name: "llm_server:session_lease_events_total", help: "Lease outcomes: acquired, conflicts (409: another replica generates the id), lost (expired while held), unavailable (Redis unreachable: went on without)",
        labelNames: ["event"], registers,
        collect() {
          this.reset();
          for (const [event, v] of Object.entries(leases.counters)) this.inc({ event }, v);
        },
      });
    }
    engine.observer = this;
  }

  /** The text exposition of every metric. */
  async render(): Promise<{ text: string; contentType: string }> {
    try {
      return { text: await this.registry.metrics(), contentType: this.registry.contentType };
    } finally {
      this.#stats = null;
    }
  }

  /** one engine stats call per scrape, shared by every gauge */
  #scrape(): Promise<EngineStats | null> {
    return (this.#stats ??= this.engine.model ? this.engine.stats().catch(() => null) : Promise.resolve(null));
  }

  submitted(ticket: number, items: number): void {
    const now = performance.timeOrigin + performance.now(); // epoch ms, as the engine stamps admission
    this.#timings.set(ticket, { items: Array.from({ length: items }, () => ({ submitted: now, started: 0, last: 0 })), open: items });
  }

  started(ticket: number, index: number, at: number): void {
    const t = this.#timings.get(ticket)?.items[index];
    if (!t) return;
    t.started = at;
    this.#queue.observe(Math.max(0, at - t.submitted) / 1000);
  }

  text(ticket: number, index: number): void {
    const t = this.#timings.get(ticket)?.items[index];
    if (!t) return;
    const now = performance.timeOrigin + performance.now();
    if (t.last === 0) this.#ttft.observe((now - t.submitted) / 1000);
    else this.#itl.observe((now - t.last) / 1000);
    t.last = now;
  }

  done(ticket: number, index: number, reason: FinishReason, generated: number, promptTokens: number): void {
    const entry = this.#timings.get(ticket);
    const t = entry?.items[index];
    if (entry && --entry.open === 0) this.#timings.delete(ticket);
    if (t && t.started > 0) this.#e2e.observe((performance.timeOrigin + performance.now() - t.submitted) / 1000);
    this.#success.inc({ finished_reason: FINISHED[reason] });
    this.#prompt.inc(promptTokens);
    this.#generation.inc(generated);
  }

  failed(ticket: number, _items: number, status: number): void {
    this.#timings.delete(ticket);
    this.#failed.inc({ status: String(status) });
  }
}
