// Streaming request helpers for both APIs, timed from just before fetch():
// TTFT = first non-empty body chunk, total = end of body. Plus a closed-loop load driver.

export interface Timing {
  ttftMs: number;
  totalMs: number;
  /** output tokens: ours = max_new_tokens (the bench model never ends early), theirs = tokens_predicted */
  tokens: number;
  /** gaps between body chunks after the first (chunks can merge, so this is a lower bound on count) */
  gapsMs: number[];
  text: string;
}

/**
 * No connection reuse, for both servers alike: llama-server (cpp-httplib) closes idle keep-alive
 * connections after 5 s, and a pooled connection it just closed fails with ECONNRESET. Each
 * request opens a fresh loopback connection instead (well under a millisecond).
 */
const FRESH_CONNECTION = { keepalive: false, headers: { "content-type": "application/json", connection: "close" } } as const;

export class HttpFailure extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/** Greedy, or the sampled profile of the brief. */
export interface Sampling {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
}

export const GREEDY: Sampling = { doSample: false, temperature: 0, topK: 1, topP: 1 };
export const SAMPLED: Sampling = { doSample: true, temperature: 0.8, topK: 40, topP: 0.95 };

async function readStream(res: Response, t0: number, onChunk: (text: string) => void): Promise<{ ttftMs: number; gapsMs: number[] }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let ttftMs = NaN;
  let last = 0;
  const gapsMs: number[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!value || value.byteLength === 0) continue;
    const now = performance.now();
    if (Number.isNaN(ttftMs)) ttftMs = now - t0;
    else gapsMs.push(now - last);
    last = now;
    onChunk(decoder.decode(value, { stream: true }));
  }
  onChunk(decoder.decode());
  return { ttftMs, gapsMs };
}

export interface OursRequest {
  requestId: string;
  prompt: string;
  maxNewTokens: number;
  sampling?: Sampling;
  numBeams?: number;
  seed?: number;
}

/** POST /api/generate-one on our server (streamed text/plain). */
export async function oursGenerate(baseUrl: string, r: OursRequest): Promise<Timing> {
  const s = r.sampling ?? GREEDY;
  const generation_config: Record<string, number | boolean> = { do_sample: s.doSample, max_new_tokens: r.maxNewTokens, num_beams: r.numBeams ?? 1 };
  if (s.doSample) Object.assign(generation_config, { temperature: s.temperature, top_k: s.topK, top_p: s.topP });
  if (r.seed !== undefined) generation_config.seed = r.seed;
  const body = JSON.stringify({ request_id: r.requestId, prompt: r.prompt, stream_response: true, generation_config });
  const t0 = performance.now();
  const res = await fetch(`${baseUrl}/api/generate-one`, { method: "POST", ...FRESH_CONNECTION, body });
  if (res.status !== 200) throw new HttpFailure(res.status, await res.text());
  let text = "";
  const { ttftMs, gapsMs } = await readStream(res, t0, (t) => (text += t));
  return { ttftMs, totalMs: performance.now() - t0, tokens: r.maxNewTokens, gapsMs, text };
}

export interface TheirsRequest {
  prompt: string;
  nPredict: number;
  sampling?: Sampling;
  cachePrompt?: boolean;
  seed?: number;
}

/** POST /completion on llama-server with SSE streaming. */
export async function theirsGenerate(baseUrl: string, r: TheirsRequest): Promise<Timing> {
  const s = r.sampling ?? GREEDY;
  const sampler = s.doSample
    ? { samplers: ["top_k", "top_p", "temperature"], temperature: s.temperature, top_k: s.topK, top_p: s.topP, min_p: 0 }
    : { samplers: ["top_k"], top_k: 1, temperature: 0 };
  const body = JSON.stringify({
    prompt: r.prompt, n_predict: r.nPredict, stream: true, ignore_eos: true, cache_prompt: r.cachePrompt ?? false,
    seed: r.seed ?? 1, ...sampler,
  });
  const t0 = performance.now();
  const res = await fetch(`${baseUrl}/completion`, { method: "POST", ...FRESH_CONNECTION, body });
  if (res.status !== 200) throw new HttpFailure(res.status, await res.text());
  let buffer = "";
  let text = "";
  let predicted = NaN;
  const consume = (final: boolean) => {
    const events = buffer.split("\n\n");
    buffer = final ? "" : events.pop()!;
    for (const ev of events) {
      const line = ev.split("\n").find((l) => l.startsWith("data: "));
      if (!line || line === "data: [DONE]") continue;
      const data = JSON.parse(line.slice(6)) as { content?: string; stop?: boolean; tokens_predicted?: number };
      text += data.content ?? "";
      if (data.stop && typeof data.tokens_predicted === "number") predicted = data.tokens_predicted;
    }
  };
  const { ttftMs, gapsMs } = await readStream(res, t0, (chunk) => {
    buffer += chunk;
    consume(false);
  });
  consume(true);
  return { ttftMs, totalMs: performance.now() - t0, tokens: predicted, gapsMs, text };
}

/** Time per output token after the first: (total - TTFT) / (tokens - 1). */
export function tpotMs(t: Timing): number {
  return t.tokens > 1 ? (t.totalMs - t.ttftMs) / (t.tokens - 1) : NaN;
}

/** Decode rate of one stream, excluding the prompt: (tokens - 1) / (total - TTFT). */
export function decodeTps(t: Timing): number {
  return t.tokens > 1 ? ((t.tokens - 1) * 1000) / (t.totalMs - t.ttftMs) : NaN;
}

export interface LoadResult {
  results: Timing[];
  wallMs: number;
}

/**
 * Closed loop: `concurrency` clients, each sending `perClient` requests back to back
 * (the next one as soon as its previous one finished).
 */
export async function closedLoop(concurrency: number, perClient: number, send: (client: number, k: number) => Promise<Timing>): Promise<LoadResult> {
  const results: Timing[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      for (let k = 0; k < perClient; k++) results.push(await send(c, k));
    }),
  );
  return { results, wallMs: performance.now() - t0 };
}

/** POSTs JSON (fresh connection) and yields each Server-Sent Event's parsed `data:` (not [DONE]); a non-200 throws. */
export async function* postSse<T>(url: string, body: unknown): AsyncGenerator<T> {
  const res = await fetch(url, { method: "POST", ...FRESH_CONNECTION, body: JSON.stringify(body) });
  if (res.status !== 200) throw new HttpFailure(res.status, await res.text());
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const part of res.body!) {
    buffer += decoder.decode(part, { stream: true });
    const events = buffer.split("\n\n");
    buffer = events.pop()!;
    for (const ev of events) if (ev.startsWith("data: ") && ev !== "data: [DONE]") yield JSON.parse(ev.slice(6)) as T;
  }
}
