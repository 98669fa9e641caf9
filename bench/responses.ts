// `bun bench/responses.ts [--reps=1] [--convs=8] [--turns=12] [--slots=4] [--ctx=2048] [--max-tokens=48] [--no-cache-ram-0] [--ours-only] [--dump=file.json]`:
// the agent-style workload of issue #21. `convs` conversations of `turns` turns each, interleaved on
// `slots` slots so that no server keeps them all in its KV cache: turn by turn (all conversations do
// turn k before any does k + 1), `slots` requests in flight at once, taken round-robin. Turn 1 sends
// an agent's instructions (~150 tokens, the same for every conversation) and a user message; every
// later turn a new user message (~30-60 tokens, its own per conversation and turn); each answer ≤
// `max-tokens`, temperature 0 (greedy), stopping where the model stops. Ours: POST /v1/responses with
// store: true, the instructions on every turn and previous_response_id chaining (the session's KV state
// continues, restored from host RAM or the store after eviction). llama-server (upstream, at its
// defaults: --cache-ram 8192 and --cache-idle-slots in this build): /v1/chat/completions with the whole
// history resent and cache_prompt: true (its /v1/responses refuses previous_response_id: probed and
// reported); a third side, llama-server --cache-ram 0 (prompt reuse from its slots only), unless
// --no-cache-ram-0. Same model (SmolLM2-135M-Instruct Q4_1), 2 threads, 4 slots, the same total KV
// (ours: PARALLEL 4, CACHE_SEQUENCES 4, CTX_SIZE 2048 = 8192 cells; llama-server: -np 4 -c 8192
// --kv-unified). TTFT (first text delta of a streamed answer) per turn against the history's length
// (input / prompt tokens), our x-session per turn, and the targets: our turn-12 TTFT within 1.5× of our
// turn-2 TTFT, llama-server's ≥ 3× ours at turn 12. Prints a table and writes it into its section of
// bench/results-responses.md; --dump writes every turn (texts, tokens, timings) and the failures as JSON.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { HttpFailure } from "./client.ts";
import { untilQuiet, waits } from "./quiet.ts";
import { startOurs, startTheirs, type BenchServer, type OurServer } from "./servers.ts";
import { median } from "./stats.ts";
import { cpuBusy, cpuModel, fmt, fmtRatio, writeSection } from "./table.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const intArg = (name: string, dflt: number, min = 1) => Math.max(min, Number(arg(name) ?? dflt) | 0);
const reps = intArg("reps", 1);
const convs = intArg("convs", 8);
const turns = intArg("turns", 12, 2);
const slots = intArg("slots", 4);
const ctx = intArg("ctx", 2048, 256);
const maxTokens = intArg("max-tokens", 48);
const withCacheRam0 = !process.argv.includes("--no-cache-ram-0");
const started = performance.now();
const say = (msg: string) => console.error(`[responses ${((performance.now() - started) / 1000).toFixed(0)} s] ${msg}`);

type Side = "ours" | "theirs" | "cram0";
// --ours-only: a quick look at ours alone (no ratios; the section is not written)
const oursOnly = process.argv.includes("--ours-only");
const SIDES: Side[] = oursOnly ? ["ours"] : withCacheRam0 ? ["ours", "theirs", "cram0"] : ["ours", "theirs"];
const LABEL: Record<Side, string> = { ours: "ours", theirs: "llama-server", cram0: "llama-server --cache-ram 0" };

const busyBefore = await cpuBusy();
if (busyBefore > 0.25) say(`WARNING: CPUs ${(busyBefore * 100).toFixed(0)} % busy with other work before the run: latencies will be noisy`);
const model = await ensureDefaultModel();
const shape = { threads: 2, parallel: slots, ctx };
const servers = {} as Record<Side, BenchServer>;
if (!oursOnly) servers.theirs = await startTheirs(model, shape, ["--jinja"]);
if (withCacheRam0 && !oursOnly) servers.cram0 = await startTheirs(model, shape, ["--jinja", "--cache-ram", "0"]);
// CACHE_SEQUENCES = PARALLEL: the same 4 × 2048 cells as llama-server's -c 8192 (its default, 2 × PARALLEL, would double ours)
const ours: OurServer = await startOurs(model, shape, 300_000, { CACHE_SEQUENCES: String(slots), LOG_EVICTIONS: "false" });
servers.ours = ours;

// --- the workload -------------------------------------------------------------------------------

const INSTRUCTIONS =
  "You are Forge, a careful software engineering assistant working inside a developer's terminal. " +
  "You help the user plan, write, test and ship small programs, one step at a time. Follow these rules in every answer. " +
  "First, restate the goal of the current step in one sentence. Second, explain your reasoning in plain language before " +
  "you show any code. Third, prefer simple, well-known libraries over clever tricks, and say why you chose them. Fourth, " +
  "when you show code, keep it short and explain what each part does. Fifth, point out one risk or edge case the user " +
  "should test. Never invent command output or file contents you have not seen. If something is unclear, state your " +
  "assumption and continue. Write complete sentences and be thorough.";
const PROJECTS = [
  "a Python web scraper that collects recipes from cooking sites",
  "a Rust command-line tool that renames photos by the date they were taken",
  "a React dashboard that shows the CPU and memory of our servers",
  "a Go service that resizes uploaded images into thumbnails",
  "a Bash script that backs up a Postgres database every night",
  "a TypeScript library that parses large CSV files as a stream",
  "an Android app in Kotlin that tracks workouts and rest days",
  "a C program that compresses old log files and deletes the oldest",
];
const ASKS = [
  "Describe the first file I should create and what goes in it.",
  "List the dependencies I need and explain why each one is needed.",
  "How should I handle errors when the network or the disk fails?",
  "Write a short function for the core logic and explain it line by line.",
  "How do I write unit tests for this part, and which cases should they cover?",
  "The last step failed with a permission error. What are the likely causes and the fixes?",
  "How can I make it faster when the input is very large?",
  "Explain how to add logging that helps me debug it in production.",
  "How should I structure the configuration so that it works on my laptop and on a server?",
  "Describe how to package and release the first version.",
  "What security problems should I check for before I share it?",
  "Summarize what we built so far and what is left to do.",
];
const DETAILS = [
  "that I am new to this language",
  "that it has to run on a small server with one gigabyte of memory and a slow disk",
  "that my team reviews every change, so the code has to be easy to read",
  "that it must keep working when the input is malformed or half written",
  "that we deploy with Docker on Linux, but I develop on a Mac laptop with an older version of the tools",
  "that I would like to avoid paid services",
  "that the previous developer left no documentation, no tests and a few comments that are wrong",
  "that it should finish within a minute",
];
/** turn 1..turns of conversation `c` in repetition `rep` (rep and c in turn 1 keep each conversation's history its own) */
function userMessage(rep: number, c: number, turn: number): string {
  const project = PROJECTS[c % PROJECTS.length]!;
  const ask = ASKS[(c + turn - 1) % ASKS.length]!;
  const detail = DETAILS[(c * 3 + turn * 5) % DETAILS.length]!;
  return turn === 1
    ? `Project ${rep + 1}-${c + 1}: I want to build ${project}. ${ask} Keep in mind ${detail}.`
    : `Step ${turn} of the project. ${ask} Keep in mind ${detail}.`;
}

interface Turn {
  ttftMs: number;
  totalMs: number;
  /** the whole prompt: instructions and history included */
  inputTokens: number;
  /** prompt tokens taken from a cache (ours: KV cache, RAM or store, reused prefix; llama-server: its slot or --cache-ram) */
  cachedTokens: number;
  outputTokens: number;
  /** ours: the x-session header */
  session: string;
  text: string;
}
type Sample = Turn & { side: Side; rep: number; conv: number; turn: number };
const records: Sample[] = [];
const failures: string[] = [];
const clip = (s: string, n = 600) => (s.length > n ? `${s.slice(0, n)}…` : s);
const FRESH_CONNECTION = { keepalive: false, headers: { "content-type": "application/json", connection: "close" } } as const; // as client.ts does

/** A streamed response's events: `event:` name (empty for plain `data:` events) and parsed data; [DONE] is left out. */
async function* sse(res: Response): AsyncGenerator<{ event: string; data: Record<string, unknown> }> {
  const decoder = new TextDecoder();
  let buffer = "";
  const parse = (block: string) => {
    let event = "", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7).trim();
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    return data && data !== "[DONE]" ? { event, data: JSON.parse(data) as Record<string, unknown> } : null;
  };
  for await (const part of res.body!) {
    buffer += decoder.decode(part, { stream: true });
    const blocks = buffer.split("\n\n");
    buffer = blocks.pop()!;
    for (const b of blocks) {
      const e = parse(b);
      if (e) yield e;
    }
  }
  const e = parse(buffer + decoder.decode());
  if (e) yield e;
}

async function post(url: string, body: unknown): Promise<Response> {
  const res = await fetch(url, { method: "POST", ...FRESH_CONNECTION, body: JSON.stringify(body), signal: AbortSignal.timeout(300_000) });
  if (res.status !== 200) throw new HttpFailure(res.status, await res.text());
  return res;
}

type OursFinal = { id: string; usage: { input_tokens: number; output_tokens: number; input_tokens_details?: { cached_tokens: number } } | null };
type ChatUsage = { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } };

/** one turn on ours: /v1/responses, streamed, continuing `previous` */
async function oursTurn(input: string, previous: string | null, instructions = INSTRUCTIONS, store = true): Promise<Turn & { id: string }> {
  const body = {
    model: "m", instructions, input, store, stream: true, temperature: 0, max_output_tokens: maxTokens,
    ...(previous ? { previous_response_id: previous } : {}),
  };
  const t0 = performance.now();
  const res = await post(`${ours.url}/v1/responses`, body).catch((err) => {
    throw new Error(`POST /v1/responses ${clip(JSON.stringify(body))} → ${(err as Error).message}`);
  });
  const session = res.headers.get("x-session") ?? "(none)";
  let ttftMs = NaN, text = "";
  let final = null as OursFinal | null;
  for await (const { event, data } of sse(res)) {
    const type = (data.type as string | undefined) ?? event;
    if (type === "response.output_text.delta") {
      if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
      text += data.delta as string;
    } else if (type === "response.completed" || type === "response.incomplete") {
      final = data.response as OursFinal;
    } else if (type === "error") {
      throw new Error(`POST /v1/responses ${clip(JSON.stringify(body))} → error event ${clip(JSON.stringify(data))}`);
    }
  }
  if (!final?.usage) throw new Error(`POST /v1/responses ${clip(JSON.stringify(body))} → the stream ended without response.completed (text ${JSON.stringify(clip(text, 200))})`);
  const u = final.usage;
  return {
    id: final.id, ttftMs, totalMs: performance.now() - t0, inputTokens: u.input_tokens, cachedTokens: u.input_tokens_details?.cached_tokens ?? NaN,
    outputTokens: u.output_tokens, session, text,
  };
}

type Message = { role: "system" | "user" | "assistant"; content: string };

/** one turn on llama-server: /v1/chat/completions with the whole history, streamed, cache_prompt */
async function theirsTurn(url: string, messages: Message[]): Promise<Turn> {
  const body = { model: "m", messages, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true }, cache_prompt: true };
  const t0 = performance.now();
  const res = await post(`${url}/v1/chat/completions`, body).catch((err) => {
    throw new Error(`POST /v1/chat/completions (${messages.length} messages, last ${clip(JSON.stringify(messages.at(-1)), 200)}) → ${(err as Error).message}`);
  });
  let ttftMs = NaN, text = "";
  let usage = null as ChatUsage | null;
  for await (const { data } of sse(res)) {
    if (data.error) throw new Error(`POST /v1/chat/completions → error event ${clip(JSON.stringify(data))}`);
    const content = (data.choices as { delta?: { content?: string } }[] | undefined)?.[0]?.delta?.content;
    if (content) {
      if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
      text += content;
    }
    if (data.usage) usage = data.usage as ChatUsage;
  }
  return {
    ttftMs, totalMs: performance.now() - t0, inputTokens: usage?.prompt_tokens ?? NaN, cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? NaN,
    outputTokens: usage?.completion_tokens ?? NaN, session: "", text,
  };
}

/** `fn` over `items`, `concurrency` at a time, each worker taking the next item in order */
async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** the whole workload on one side: turn by turn, all conversations, `slots` in flight */
async function workload(side: Side, rep: number): Promise<void> {
  const previous: (string | null)[] = Array(convs).fill(null);
  const histories: Message[][] = Array.from({ length: convs }, () => [{ role: "system", content: INSTRUCTIONS }]);
  const broken = new Set<number>();
  for (let turn = 1; turn <= turns; turn++) {
    await pool(Array.from({ length: convs }, (_, c) => c).filter((c) => !broken.has(c)), slots, async (c) => {
      const input = userMessage(rep, c, turn);
      try {
        let t: Turn;
        if (side === "ours") {
          const r = await oursTurn(input, previous[c]!);
          previous[c] = r.id;
          t = r;
        } else {
          histories[c]!.push({ role: "user", content: input });
          t = await theirsTurn(servers[side].url, histories[c]!);
          histories[c]!.push({ role: "assistant", content: t.text });
        }
        records.push({ ...t, side, rep, conv: c, turn });
      } catch (err) {
        broken.add(c); // its chain is cut: the conversation stops here
        failures.push(`${LABEL[side]}, repetition ${rep + 1}, conversation ${c + 1}, turn ${turn}: ${(err as Error).message}`);
      }
    });
  }
}

// --- the run ------------------------------------------------------------------------------------

const others = (side: Side) => SIDES.filter((s) => s !== side).map((s) => servers[s].pid);
const statsDelta = { evictions: 0, savedToRam: 0, restoredFromRam: 0, restoredFromStore: 0, recomputed: 0, prefixHits: 0 };
let probe = "";
try {
  // llama-server's own /v1/responses: does it continue a previous response?
  const r = oursOnly ? null : await fetch(`${servers.theirs.url}/v1/responses`, { method: "POST", ...FRESH_CONNECTION, body: JSON.stringify({ model: "m", input: "Hi", previous_response_id: "resp_x", max_output_tokens: 4 }) });
  probe = r ? `llama-server's POST /v1/responses with previous_response_id: HTTP ${r.status} ${clip((await r.text()).trim(), 200)}` : "";
  say(probe);
  // one short one-off request each, without the instructions (first-request costs, not measured; no server starts with them cached)
  await oursTurn("Hello.", null, "Be brief.", false).catch((err) => say(`warm-up, ours: ${(err as Error).message}`));
  for (const side of SIDES.filter((s) => s !== "ours")) await theirsTurn(servers[side].url, [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello." }]).catch((err) => say(`warm-up, ${side}: ${(err as Error).message}`));
  for (let rep = 0; rep < reps; rep++) {
    for (const side of rep % 2 ? [...SIDES].reverse() : SIDES) {
      for (const pid of others(side)) await untilQuiet(pid);
      const before = side === "ours" ? await ours.stats() : null;
      const t0 = performance.now();
      await workload(side, rep);
      if (before) {
        const after = await ours.stats();
        statsDelta.evictions += after.evictions - before.evictions;
        statsDelta.prefixHits += after.prefixHits - before.prefixHits;
        for (const k of ["savedToRam", "restoredFromRam", "restoredFromStore", "recomputed"] as const) statsDelta[k] += after.sessions[k] - before.sessions[k];
      }
      say(`repetition ${rep + 1}/${reps}: ${LABEL[side]} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
} catch (err) {
  for (const s of SIDES) console.error(`[responses] ${LABEL[s]} (${servers[s].url}, pid ${servers[s].pid}); its log ends:\n${servers[s].log()}`);
  throw err;
} finally {
  await Promise.allSettled(SIDES.map((s) => servers[s].stop()));
}

// --- the report ---------------------------------------------------------------------------------

const of = (side: Side, turn: number, rep?: number) => records.filter((r) => r.side === side && r.turn === turn && (rep === undefined || r.rep === rep));
const med = (side: Side, turn: number, f: (r: Sample) => number, rep?: number) => median(of(side, turn, rep).map(f));
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const ttft = (r: Sample) => r.ttftMs;
const theirSides = SIDES.filter((s) => s !== "ours");
const sessionsOf = (turn: number) => {
  const counts = new Map<string, number>();
  for (const r of of("ours", turn)) counts.set(r.session, (counts.get(r.session) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ");
};
const rows: string[] = [];
for (let turn = 1; turn <= turns; turn++) {
  const o = med("ours", turn, ttft);
  const cells = [
    String(turn),
    SIDES.slice(0, 2).map((s) => fmt(med(s, turn, (r) => r.inputTokens), 0)).join(" / "),
    SIDES.map((s) => fmt(med(s, turn, (r) => r.inputTokens - r.cachedTokens), 0)).join(" / "),
    SIDES.slice(0, 2).map((s) => fmt(mean(of(s, turn).map((r) => r.outputTokens)), 1)).join(" / "),
    fmt(o, 0),
    ...theirSides.flatMap((s) => [fmt(med(s, turn, ttft), 0), fmtRatio(med(s, turn, ttft) / o)]),
    sessionsOf(turn),
  ];
  rows.push(`| ${cells.join(" | ")} |`);
}

const last = turns;
const lastName = last === 12 ? "turn 12" : `turn ${last} (the last; the target names turn 12)`;
const perRep = (f: (rep: number) => number) => Array.from({ length: reps }, (_, rep) => fmt(f(rep), 2)).join(", ");
const flat = med("ours", last, ttft) / med("ours", 2, ttft);
const lead = (s: Side) => med(s, last, ttft) / med("ours", last, ttft);
const check = (value: number, ok: (v: number) => boolean) => (Number.isFinite(value) ? (ok(value) ? "PASS" : "FAIL") : "no data");
const targets = [
  `- ours, TTFT at ${lastName} / at turn 2: ${fmtRatio(flat)} (each repetition: ${perRep((rep) => med("ours", last, ttft, rep) / med("ours", 2, ttft, rep))}); target ≤ 1.5×: **${check(flat, (v) => v <= 1.5)}**`,
  `- llama-server / ours, TTFT at ${lastName}: ${fmtRatio(lead("theirs"))} (each repetition: ${perRep((rep) => med("theirs", last, ttft, rep) / med("ours", last, ttft, rep))}); target ≥ 3×: **${check(lead("theirs"), (v) => v >= 3)}**`,
  ...(withCacheRam0 ? [`- llama-server --cache-ram 0 / ours, TTFT at ${lastName}: ${fmtRatio(lead("cram0"))} (each repetition: ${perRep((rep) => med("cram0", last, ttft, rep) / med("ours", last, ttft, rep))}); informative (the target is against llama-server at its defaults): ${lead("cram0") >= 3 ? "≥ 3×" : "< 3×"}`] : []),
];
// greedy on both: do the servers write the same answers (so that the histories are the same)?
const same = records.filter((r) => r.side === "ours").filter((r) => records.find((t) => t.side === "theirs" && t.rep === r.rep && t.conv === r.conv && t.turn === r.turn)?.text === r.text).length;
const compared = records.filter((r) => r.side === "ours" && records.some((t) => t.side === "theirs" && t.rep === r.rep && t.conv === r.conv && t.turn === r.turn)).length;
const total = convs * turns * reps;
const header = [
  "| turn | history tokens (ours / llama-server) | prompt tokens decoded, median (" + SIDES.map((s) => LABEL[s]).join(" / ") + ") | output tokens, mean (ours / llama-server) | TTFT ours ms | " +
    theirSides.map((s) => `TTFT ${LABEL[s]} ms | ${LABEL[s]} / ours`).join(" | ") + " | ours x-session |",
  `|${Array.from({ length: 6 + theirSides.length * 2 }, () => "---").join("|")}|`,
];
const table = [
  `Agent-style Responses workload (issue #21): ${convs} conversations × ${turns} turns, turn by turn, ${slots} in flight; ours: /v1/responses with store and previous_response_id (instructions on every turn); llama-server (upstream, --kv-unified --jinja, at its defaults: --cache-ram 8192 MiB, --cache-idle-slots): /v1/chat/completions with the whole history and cache_prompt${withCacheRam0 ? "; and llama-server --cache-ram 0" : ""}. SmolLM2-135M-Instruct Q4_1, 2 threads, ${slots} slots, the same KV (ours: PARALLEL ${slots}, CACHE_SEQUENCES ${slots}, CTX_SIZE ${ctx}; llama-server: -np ${slots} -c ${slots * ctx} --kv-unified), instructions ~150 tokens, user messages ~30-60 tokens, ≤ ${maxTokens} output tokens, temperature 0; ${reps} alternating repetition(s), medians over conversations and repetitions; ${cpuModel()}, CPUs ${(busyBefore * 100).toFixed(0)} % busy with other work before the start; ${new Date().toISOString()}`,
  "",
  ...header,
  ...rows,
  "",
  ...targets,
  "",
  `History tokens: the whole prompt of the turn (usage input_tokens / prompt_tokens). Prompt tokens decoded: the prompt tokens not taken from a cache (input minus cached_tokens). TTFT: from the request to the first text delta of the streamed answer. Turns completed: ${SIDES.map((s) => `${LABEL[s]} ${records.filter((r) => r.side === s).length} of ${total}`).join(", ")}. Greedy answers identical on ours and llama-server: ${same} of ${compared} turns.`,
  `Ours over its run${reps > 1 ? "s" : ""}: ${statsDelta.evictions} evictions, ${statsDelta.savedToRam} KV states saved to RAM, ${statsDelta.restoredFromRam} restored from RAM, ${statsDelta.restoredFromStore} from the store, ${statsDelta.recomputed} recomputed, ${statsDelta.prefixHits} shared-prefix hits. ${probe}. Before each side's run the others were left to go quiet: ${waits.count} waits, longest ${fmt(waits.maxMs, 0)} ms${waits.timeouts ? `, ${waits.timeouts} gave up after 2 s` : ""}.`,
  ...(failures.length ? ["", `Failures (${failures.length}; a failed conversation stops):`, ...failures.slice(0, 10).map((f) => `- ${f}`)] : []),
].join("\n");
console.log(table);
if (oursOnly) process.exit(0);
const defaults = convs === 8 && turns === 12 && slots === 4 && ctx === 2048 && maxTokens === 48;
const command = `bun bench/responses.ts --reps=${reps}${convs !== 8 ? ` --convs=${convs}` : ""}${turns !== 12 ? ` --turns=${turns}` : ""}${slots !== 4 ? ` --slots=${slots}` : ""}${ctx !== 2048 ? ` --ctx=${ctx}` : ""}${maxTokens !== 48 ? ` --max-tokens=${maxTokens}` : ""}${withCacheRam0 ? "" : " --no-cache-ram-0"}`;
const section = defaults ? "responses" : `responses-${convs}x${turns}-slots${slots}-ctx${ctx}-out${maxTokens}`;
writeSection(join(import.meta.dir, "results-responses.md"), section, `Command: \`${command}\` (${((performance.now() - started) / 1000).toFixed(0)} s)\n\n${table}`);
say("wrote bench/results-responses.md");
const dump = arg("dump");
if (dump) writeFileSync(dump, JSON.stringify({ instructions: INSTRUCTIONS, records, failures }, null, 1));
process.exit(0);
