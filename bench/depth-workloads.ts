// Workloads at depth, as the server is used: one long generation, several at once, sessions
// continued after thousands of tokens, and chat turns appended to a long history. Each comparison
// alternates ours / llama-server per repetition, and waits for the other server to go quiet first.
import { closedLoop, oursGenerate, postSse, theirsGenerate, type Timing } from "./client.ts";
import { words } from "./prompts.ts";
import { untilQuiet } from "./quiet.ts";
import type { BenchServer } from "./servers.ts";

export type Side = "ours" | "theirs";
export type Servers = Record<Side, BenchServer>;
/** per side, one value per repetition */
export type Samples = Record<Side, number[]>;
export const samples = (): Samples => ({ ours: [], theirs: [] });

let serial = 0;
const tag = Date.now().toString(36);
const freshId = (what: string) => `depth-${tag}-${what}-${serial++}`;

/** Runs `fn` for each side in an order that alternates by repetition, after the other side went quiet. */
async function alternate(s: Servers, rep: number, fn: (side: Side) => Promise<void>): Promise<void> {
  for (const side of (rep % 2 === 0 ? ["ours", "theirs"] : ["theirs", "ours"]) as Side[]) {
    await untilQuiet(s[side === "ours" ? "theirs" : "ours"].pid);
    await fn(side);
  }
}

/** One generation of `n` tokens from a short prompt: decode tokens/s and TTFT. */
export async function longGeneration(s: Servers, n: number, reps: number, out: { tps: Samples; ttft: Samples }): Promise<void> {
  for (let rep = 0; rep < reps; rep++) {
    const prompt = words(`Long ${n} ${rep}`, 24, 7000 + rep);
    await alternate(s, rep, async (side) => {
      const t = side === "ours"
        ? await oursGenerate(s.ours.url, { requestId: freshId("long"), prompt, maxNewTokens: n })
        : await theirsGenerate(s.theirs.url, { prompt, nPredict: n });
      if (t.tokens !== n) throw new Error(`${side}: ${t.tokens} tokens, expected ${n}`);
      out.tps[side].push(((n - 1) * 1000) / (t.totalMs - t.ttftMs));
      out.ttft[side].push(t.ttftMs);
    });
  }
}

/** `clients` generations of `n` tokens at once: aggregate tokens/s. */
export async function concurrentLong(s: Servers, clients: number, n: number, reps: number, out: Samples): Promise<void> {
  for (let rep = 0; rep < reps; rep++) {
    await alternate(s, rep, async (side) => {
      const r = await closedLoop(clients, 1, (c) => {
        const prompt = words(`Many ${rep} ${c}`, 24, 8000 + rep * 100 + c);
        return side === "ours"
          ? oursGenerate(s.ours.url, { requestId: freshId("many"), prompt, maxNewTokens: n })
          : theirsGenerate(s.theirs.url, { prompt, nPredict: n });
      });
      out[side].push((r.results.reduce((a, t) => a + t.tokens, 0) * 1000) / r.wallMs);
    });
  }
}

/** llama-server /completion on token ids, streamed: TTFT, and the ids it generated. */
async function theirsTokens(url: string, prompt: number[], n: number): Promise<{ t: Timing; ids: number[] }> {
  const t0 = performance.now();
  const ids: number[] = [];
  let ttftMs = NaN;
  const body = { prompt, n_predict: n, stream: true, ignore_eos: true, cache_prompt: true, return_tokens: true, samplers: ["top_k"], top_k: 1, temperature: 0 };
  for await (const data of postSse<{ tokens?: number[] }>(`${url}/completion`, body)) {
    if (!data.tokens?.length) continue;
    if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
    ids.push(...data.tokens);
  }
  return { t: { ttftMs, totalMs: performance.now() - t0, tokens: ids.length, gapsMs: [], text: "" }, ids };
}

/**
 * `sessions` conversations brought to `depth` tokens (not measured), then continued `reps` times by
 * `n` tokens each, all sessions at once. Ours: the same request_id (only the new tokens are decoded).
 * llama-server: the whole token history again, with cache_prompt (its slot holds the rest).
 */
export async function continuations(s: Servers, o: { sessions: number; depth: number; n: number; reps: number }, out: { wallS: Samples; ttft: Samples }): Promise<void> {
  const prompts = Array.from({ length: o.sessions }, (_, i) => words(`Session ${o.depth} ${i}`, Math.round(o.depth * 0.75), 9000 + o.depth + i));
  const ids = prompts.map(() => freshId(`s${o.depth}`));
  const history: number[][] = [];
  for (const p of prompts) {
    const r = await fetch(`${s.theirs.url}/tokenize`, { method: "POST", body: JSON.stringify({ content: p, add_special: true }) });
    history.push(((await r.json()) as { tokens: number[] }).tokens);
  }
  // bring every session in: each server decodes the whole prompt once
  await Promise.all(prompts.map((prompt, i) => oursGenerate(s.ours.url, { requestId: ids[i]!, prompt, maxNewTokens: 1 })));
  await untilQuiet(s.ours.pid);
  await Promise.all(history.map(async (h) => h.push(...(await theirsTokens(s.theirs.url, h, 1)).ids)));
  for (let rep = 0; rep < o.reps; rep++) {
    await alternate(s, rep, async (side) => {
      const r = await closedLoop(o.sessions, 1, async (c) => {
        if (side === "ours") return oursGenerate(s.ours.url, { requestId: ids[c]!, prompt: "", maxNewTokens: o.n });
        const { t, ids: got } = await theirsTokens(s.theirs.url, history[c]!, o.n);
        history[c]!.push(...got);
        return t;
      });
      out.wallS[side].push(r.wallMs / 1000);
      out.ttft[side].push(r.results.map((t) => t.ttftMs).sort((a, b) => a - b)[r.results.length >> 1]!);
    });
  }
}

type Message = { role: string; content: string };

/** One streamed chat completion (greedy); the reply's text and timing. */
async function chatTurn(url: string, messages: Message[], maxTokens: number, cachePrompt: boolean): Promise<Timing> {
  const body: Record<string, unknown> = { model: "m", messages, max_tokens: maxTokens, temperature: 0, stream: true };
  if (cachePrompt) body.cache_prompt = true;
  const t0 = performance.now();
  let ttftMs = NaN, text = "", chunks = 0;
  for await (const data of postSse<{ choices?: { delta?: { content?: string } }[] }>(`${url}/v1/chat/completions`, body)) {
    const content = data.choices?.[0]?.delta?.content;
    if (!content) continue;
    if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
    text += content;
    chunks++;
  }
  return { ttftMs, totalMs: performance.now() - t0, tokens: chunks, gapsMs: [], text };
}

/**
 * `clients` conversations, each with a history of about `historyTokens` that one earlier request
 * brought in; then `turns` turns each: a new ~20-token user message appended, a reply of `n`
 * tokens appended. Per repetition: the median turn latency and TTFT.
 */
export async function chatAtDepth(s: Servers, o: { clients: number; historyTokens: number; turns: number; n: number; reps: number }, out: { turnMs: Samples; ttft: Samples }): Promise<void> {
  for (let rep = 0; rep < o.reps; rep++) {
    await alternate(s, rep, async (side) => {
      const url = s[side].url;
      const talks: Message[][] = Array.from({ length: o.clients }, (_, c) => {
        const seed = 20000 + rep * 100 + c;
        const history: Message[] = [{ role: "system", content: words(`Assistant ${side} ${rep} ${c}`, 40, seed) }];
        for (let k = 0; history.length < 40 && k * 50 < o.historyTokens * 0.7; k++) {
          history.push({ role: "user", content: words(`Q${k}`, 14, seed + k) }, { role: "assistant", content: words(`A${k}`, 22, seed + 50 + k) });
        }
        return history;
      });
      await Promise.all(talks.map((h) => chatTurn(url, [...h, { role: "user", content: "Hello again." }], 1, side === "theirs")));
      const times: Timing[] = [];
      await Promise.all(talks.map(async (h, c) => {
        for (let turn = 0; turn < o.turns; turn++) {
          h.push({ role: "user", content: words(`Turn ${turn} of ${c}`, 14, 30000 + rep * 100 + c * 10 + turn) });
          const t = await chatTurn(url, h, o.n, side === "theirs");
          h.push({ role: "assistant", content: t.text });
          times.push(t);
        }
      }));
      const mid = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
      out.turnMs[side].push(mid(times.map((t) => t.totalMs)));
      out.ttft[side].push(mid(times.map((t) => t.ttftMs)));
    });
  }
}
