// Shared pieces of the session tests: a greedy request that reports its x-session, the cache and
// health views, and a poll-until helper.
import type { TestApp } from "./app.ts";

export const PROMPT = "[INST] Generate a very long poem about 1000 cats [/INST]\n\n";
/** 2 slots: a third session pushes the least recently used one out of the KV cache */
export const SMALL = { PARALLEL: "2", CACHE_SEQUENCES: "2", CTX_SIZE: "256" };

/** Greedy non-streamed generate-one; its text and the x-session header. */
export async function gen(t: TestApp, id: string, prompt: string, n: number): Promise<{ text: string; session: string | null }> {
  const r = await t.post("/api/generate-one", { request_id: id, prompt, stream_response: false, generation_config: { do_sample: false, max_new_tokens: n } });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  return { text: await r.text(), session: r.headers.get("x-session") };
}

export const get = (t: TestApp, path: string) => t.app.handle(new Request(`http://local${path}`));

export async function cacheInfo(t: TestApp, id: string) {
  const r = await get(t, `/api/cache/${encodeURIComponent(id)}`);
  return r.status === 200 ? ((await r.json()) as { tier: string; state: string; state_bytes: number; generated_tokens: number }) : null;
}

export const health = async (t: TestApp) => (await (await get(t, "/health")).json()) as { status: string; degraded?: string };

export async function until(what: string, f: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}
