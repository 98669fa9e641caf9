// `bun bench/tools.ts [--reps=3] [--trips=N] [--choices=required,auto] [--parallel-calls] [--model=bench]`: a tool-calling
// round trip (issue #20) on /v1/chat/completions, ours against upstream llama-server --jinja with the same
// three function tools and model (SmolLM2-135M-Instruct Q4_1 by default; --model=bench: the synthetic bench
// model), 2 threads, 8 slots, 4096 tokens a slot, non-streaming, temperature 0 and a fixed seed. A round trip:
// (1) a question that calls for a tool, with the tools and tool_choice required (the "auto" rows: auto),
// parallel_tool_calls false (llama-server's default for a template without parallel calls; ours defaults to
// OpenAI's true, and a small model then keeps calling until max_tokens cuts a call: --parallel-calls sends true),
// ≤ 128 tokens; (2) each returned call's arguments checked with ajv against its tool's parameters; (3) the
// calls and their tool results sent back (assistant tool_calls + role tool messages, tool_choice none),
// ≤ 64 tokens, for the answer. A reply with no valid call goes on with the question's reference call, so
// both servers always make the same two requests. Latency: wall time of the whole round trip, concurrency 1
// (3 round trips, or --trips) and 8 (closed loop, 8 clients × 2, or --trips, each). The share of calls whose
// arguments validate counts a reply with no call, unparseable arguments or an unknown tool as invalid; the
// target, 100 % for ours, leaves out auto's replies that answer instead of calling (auto allows them).
// Prints a table and writes it into its section of bench/results-tools.md (-bench.md for the bench model).
import { join } from "node:path";
import Ajv, { type ValidateFunction } from "ajv";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { closedLoop, HttpFailure, type Timing } from "./client.ts";
import { untilQuiet } from "./quiet.ts";
import { startOurs, startTheirs, type BenchServer } from "./servers.ts";
import { median } from "./stats.ts";
import { cpuBusy, cpuModel, fmtRatio, verdict, writeSection } from "./table.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const reps = Math.max(1, Number(arg("reps") ?? 3) | 0);
const trips = arg("trips") === undefined ? null : Math.max(1, Number(arg("trips")) | 0);
const choices = (arg("choices") ?? "required,auto").split(",").filter((c): c is Choice => c === "required" || c === "auto");
const parallelCalls = process.argv.includes("--parallel-calls");
const synthetic = process.argv.includes("--model=bench");
const model = synthetic ? await ensureModel("bench") : await ensureDefaultModel();
const shape = { threads: 2, parallel: 8, ctx: 4096 };
const started = performance.now();
const say = (msg: string) => console.error(`[tools ${((performance.now() - started) / 1000).toFixed(0)} s] ${msg}`);
const busyBefore = await cpuBusy();
if (busyBefore > 0.25) say(`WARNING: CPUs ${(busyBefore * 100).toFixed(0)} % busy with other work before the run: latencies will be noisy`);
type Side = "ours" | "theirs";
type Choice = "required" | "auto";
if (choices.length === 0) throw new Error("--choices: required, auto or both");

const str = (description: string) => ({ type: "string", description, maxLength: 40 });
const CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF"];
const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather and forecast for a city",
      parameters: {
        type: "object",
        properties: {
          city: str("City name, e.g. Paris"),
          unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" },
          days: { type: "integer", minimum: 1, maximum: 7, description: "Days of forecast, 1 for today only" },
        },
        required: ["city", "unit", "days"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "search_flights",
      description: "Search flights between two cities on a given date",
      parameters: {
        type: "object",
        properties: {
          origin: str("Departure city"),
          destination: str("Arrival city"),
          date: { type: "string", description: "Departure date, YYYY-MM-DD", maxLength: 10 },
          passengers: { type: "integer", minimum: 1, maximum: 9, description: "Number of passengers" },
          cabin: { type: "string", enum: ["economy", "premium_economy", "business", "first"] },
        },
        required: ["origin", "destination", "date", "passengers"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "convert_currency",
      description: "Convert an amount of money between currencies at today's rate",
      parameters: {
        type: "object",
        properties: {
          amount: { type: "number", minimum: 0, description: "Amount to convert" },
          from: { type: "string", enum: CURRENCIES, description: "ISO code of the currency to convert from" },
          to: { type: "string", enum: CURRENCIES, description: "ISO code of the currency to convert to" },
        },
        required: ["amount", "from", "to"],
        additionalProperties: false,
      },
    },
  },
];
/** each question with the call it calls for: the reference call a reply without a valid call goes on with */
const QUESTIONS: [string, string, Record<string, unknown>][] = [
  ["What's the weather in Paris today? Give it to me in celsius.", "get_weather", { city: "Paris", unit: "celsius", days: 1 }],
  ["Will it rain in Seattle over the next 3 days? I use fahrenheit.", "get_weather", { city: "Seattle", unit: "fahrenheit", days: 3 }],
  ["Find me a flight from Boston to Madrid on 2025-07-14 for 2 passengers in economy.", "search_flights", { origin: "Boston", destination: "Madrid", date: "2025-07-14", passengers: 2, cabin: "economy" }],
  ["How much is 250 US dollars in euros?", "convert_currency", { amount: 250, from: "USD", to: "EUR" }],
  ["What's the 5-day forecast for Tokyo, in celsius?", "get_weather", { city: "Tokyo", unit: "celsius", days: 5 }],
  ["I need a business class seat from London to New York on 2025-09-02, just for me.", "search_flights", { origin: "London", destination: "New York", date: "2025-09-02", passengers: 1, cabin: "business" }],
  ["Convert 1200 Swiss francs to Japanese yen, please.", "convert_currency", { amount: 1200, from: "CHF", to: "JPY" }],
  ["Search flights from Berlin to Rome on 2025-05-20 for a family of 4.", "search_flights", { origin: "Berlin", destination: "Rome", date: "2025-05-20", passengers: 4 }],
];

/** what the tool answers (the arguments echoed, made-up data) */
function toolResult(name: string, args: Record<string, unknown>): string {
  switch (name) {
    case "get_weather":
      return JSON.stringify({ ...args, forecast: [{ day: 1, high: 21, low: 13, sky: "partly cloudy", rain_chance: 0.2 }, { day: 2, high: 18, low: 11, sky: "rain", rain_chance: 0.8 }].slice(0, Number(args.days) || 1) });
    case "search_flights":
      return JSON.stringify({ ...args, flights: [{ flight: "IB6174", depart: "08:05", arrive: "21:10", price_usd: 612 }, { flight: "DL9812", depart: "17:40", arrive: "07:15+1", price_usd: 548 }] });
    default:
      return JSON.stringify({ ...args, rate: 0.92, result: Math.round(Number(args.amount) * 92) / 100 });
  }
}

const ajv = new Ajv({ allErrors: true });
const validators = new Map<string, ValidateFunction>(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));

interface ToolCallOut {
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}
interface ChatResponse {
  choices: { message: { content?: string | null; tool_calls?: ToolCallOut[] }; finish_reason: string }[];
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } };
}
interface Check {
  /** calls counted: each returned call, plus one for each reply with none */
  calls: number;
  valid: number;
  noCall: number;
  unparseable: number;
  /** of the unparseable: cut by max_tokens (finish_reason length) */
  cut: number;
  unknownTool: number;
  schemaInvalid: number;
  /** round trips with an HTTP error (not timed, not counted above) */
  failed: number;
  examples: string[];
}
const newCheck = (): Check => ({ calls: 0, valid: 0, noCall: 0, unparseable: 0, cut: 0, unknownTool: 0, schemaInvalid: 0, failed: 0, examples: [] });
const checks: Record<Side, Record<Choice, Check>> = {
  ours: { required: newCheck(), auto: newCheck() },
  theirs: { required: newCheck(), auto: newCheck() },
};

const FRESH_CONNECTION = { keepalive: false, headers: { "content-type": "application/json", connection: "close" } } as const; // as client.ts does
async function post(url: string, path: string, body: unknown): Promise<unknown> {
  // a request that never ends stops the run (with the servers' logs) instead of hanging it
  const res = await fetch(`${url}${path}`, { method: "POST", ...FRESH_CONNECTION, body: JSON.stringify(body), signal: AbortSignal.timeout(300_000) });
  const text = await res.text();
  if (res.status !== 200) throw new HttpFailure(res.status, text);
  return JSON.parse(text);
}
const clip = (s: string, n = 400) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** one round trip; Timing's ttftMs is the call request's time, tokens the completion tokens of both */
interface Trip extends Timing {
  answerMs: number;
  promptTokens: number;
  /** of the prompt tokens, those the server found in its cache */
  cachedTokens: number;
}
/** round trip with question `q` (both servers get the same questions in the same order); `count`: false for the warm-up */
async function roundTrip(side: Side, choice: Choice, q: number, count = true): Promise<Trip> {
  const url = servers[side].url, check = checks[side][choice];
  const [question, refName, refArgs] = QUESTIONS[q % QUESTIONS.length]!;
  const user = { role: "user", content: question };
  const first = { model: "m", messages: [user], tools: TOOLS, tool_choice: choice, parallel_tool_calls: parallelCalls, temperature: 0, seed: 1, max_tokens: 128 };
  const t0 = performance.now();
  try {
    const r1 = (await post(url, "/v1/chat/completions", first)) as ChatResponse;
    const callMs = performance.now() - t0;
    const message = r1.choices[0]!.message;
    const returned = message.tool_calls ?? [];
    const invalid = (why: string) => {
      if (check.examples.length < 3) check.examples.push(`${JSON.stringify(question)} (tool_choice ${choice}): ${why}; message ${clip(JSON.stringify(message))}, finish_reason ${r1.choices[0]!.finish_reason}`);
    };
    const sent: { id: string; name: string; arguments: string; result: string; ok: boolean }[] = [];
    if (count) {
      check.calls += Math.max(1, returned.length);
      if (returned.length === 0) {
        check.noCall++;
        invalid("no tool call");
      }
    }
    for (const [i, c] of returned.entries()) {
      const name = c.function?.name ?? "", text = c.function?.arguments ?? "", id = c.id || `call_${i}`;
      const validate = validators.get(name);
      let args: unknown, why = "";
      try {
        args = JSON.parse(text);
      } catch (err) {
        why = `arguments are not JSON (${(err as Error).message})`;
      }
      if (!why && !validate) why = `unknown tool ${JSON.stringify(name)}`;
      else if (!why && !validate!(args)) why = `arguments do not match ${name}'s parameters: ${ajv.errorsText(validate!.errors)}`;
      if (count) {
        if (!why) check.valid++;
        else if (why.startsWith("arguments are not")) {
          check.unparseable++;
          if (r1.choices[0]!.finish_reason === "length") check.cut++;
        } else if (why.startsWith("unknown")) check.unknownTool++;
        else check.schemaInvalid++;
        if (why) invalid(why);
      }
      // an invalid call still gets its tool message (an error), as a client would send it
      sent.push({ id, name, arguments: text, result: why ? JSON.stringify({ error: why }) : toolResult(name, args as Record<string, unknown>), ok: !why });
    }
    if (!sent.some((s) => s.ok)) {
      sent.length = 0; // no valid call: the reference call, so that both servers make the same second request
      sent.push({ id: "call_ref", name: refName, arguments: JSON.stringify(refArgs), result: toolResult(refName, refArgs), ok: true });
    }
    const second = {
      model: "m", tools: TOOLS, tool_choice: "none", temperature: 0, seed: 1, max_tokens: 64,
      messages: [
        user,
        { role: "assistant", content: null, tool_calls: sent.map((s) => ({ id: s.id, type: "function", function: { name: s.name, arguments: s.arguments } })) },
        ...sent.map((s) => ({ role: "tool", tool_call_id: s.id, content: s.result })),
      ],
    };
    const t1 = performance.now();
    const r2 = (await post(url, "/v1/chat/completions", second)) as ChatResponse;
    const t2 = performance.now();
    return {
      ttftMs: callMs, answerMs: t2 - t1, totalMs: t2 - t0, gapsMs: [],
      tokens: (r1.usage?.completion_tokens ?? NaN) + (r2.usage?.completion_tokens ?? NaN),
      promptTokens: (r1.usage?.prompt_tokens ?? NaN) + (r2.usage?.prompt_tokens ?? NaN),
      cachedTokens: (r1.usage?.prompt_tokens_details?.cached_tokens ?? NaN) + (r2.usage?.prompt_tokens_details?.cached_tokens ?? NaN),
      text: r2.choices[0]!.message.content ?? "",
    };
  } catch (err) {
    if (!(err instanceof HttpFailure)) throw err;
    if (count) {
      check.failed++;
      if (check.examples.length < 3) check.examples.push(`${JSON.stringify(question)} (tool_choice ${choice}): ${err.message}`);
    }
    return { ttftMs: NaN, answerMs: NaN, totalMs: NaN, gapsMs: [], tokens: NaN, promptTokens: NaN, cachedTokens: NaN, text: "" };
  }
}

const servers: Record<Side, BenchServer> = {
  theirs: await startTheirs(model, shape, ["--jinja"]),
  ours: await startOurs(model, shape, 300_000, { SESSION_STORE: "off" }),
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void Promise.allSettled([servers.ours.stop(), servers.theirs.stop()]).then(() => process.exit(130)));
}
say(`both servers up: ours ${servers.ours.url}, llama-server ${servers.theirs.url}`);

type Key = "c1" | "c8" | "c8call" | "c8answer" | "tokens" | "prompt" | "cached";
const empty = (): Record<Key, number[]> => ({ c1: [], c8: [], c8call: [], c8answer: [], tokens: [], prompt: [], cached: [] });
const res: Record<Side, Record<Choice, Record<Key, number[]>>> = {
  ours: { required: empty(), auto: empty() },
  theirs: { required: empty(), auto: empty() },
};
const c1Trips = trips ?? 3, c8Trips = trips ?? 2;
let rendered = "";
try {
  // does llama-server put the tools into SmolLM2's prompt? (its /apply-template: the prompt it would decode)
  const probe = (await post(servers.theirs.url, "/apply-template", { messages: [{ role: "user", content: QUESTIONS[0]![0] }], tools: TOOLS, tool_choice: "required" })) as { prompt: string };
  const missing = TOOLS.map((t) => t.function.name).filter((name) => !probe.prompt.includes(name));
  rendered = missing.length === 0
    ? "llama-server's /apply-template puts all three tools into the prompt."
    : `llama-server's /apply-template leaves ${missing.length === TOOLS.length ? "every tool" : missing.join(", ")} out of the prompt: ${JSON.stringify(probe.prompt)}.`;
  for (const choice of choices) for (const side of ["ours", "theirs"] as const) await roundTrip(side, choice, 0, false); // ours compiles each tool grammar once
  say("warm-up round trips done");
  for (let rep = 0; rep < reps; rep++) {
    for (const choice of choices) {
      for (const side of (rep % 2 ? ["theirs", "ours"] : ["ours", "theirs"]) as Side[]) {
        const other = servers[side === "ours" ? "theirs" : "ours"].pid;
        const r = res[side][choice];
        await untilQuiet(other);
        const one = (await closedLoop(1, c1Trips, (_, k) => roundTrip(side, choice, k))).results as Trip[];
        r.c1.push(median(one.map((t) => t.totalMs)));
        await untilQuiet(other);
        const eight = (await closedLoop(8, c8Trips, (c, k) => roundTrip(side, choice, c + k))).results as Trip[];
        r.c8.push(median(eight.map((t) => t.totalMs)));
        r.c8call.push(median(eight.map((t) => t.ttftMs)));
        r.c8answer.push(median(eight.map((t) => t.answerMs)));
        r.tokens.push(median([...one, ...eight].map((t) => t.tokens)));
        r.prompt.push(median([...one, ...eight].map((t) => t.promptTokens)));
        r.cached.push(median([...one, ...eight].map((t) => t.cachedTokens)));
        say(`rep ${rep + 1}, tool_choice ${choice}, ${side}: round trip ${r.c1.at(-1)!.toFixed(0)} ms at concurrency 1, ${r.c8.at(-1)!.toFixed(0)} ms at 8`);
      }
    }
    say(`rep ${rep + 1}/${reps}`);
  }
} catch (err) {
  // a server that went away or stopped answering: each one's state and the end of its log
  for (const s of Object.values(servers)) {
    const alive = (() => {
      try {
        return process.kill(s.pid, 0);
      } catch {
        return false;
      }
    })();
    say(`${s.name} (${s.url}, pid ${s.pid}, ${alive ? "still running" : "gone"}); its log ends:\n${s.log()}`);
  }
  throw err;
} finally {
  await Promise.allSettled([servers.ours.stop(), servers.theirs.stop()]);
}

const m = (side: Side, choice: Choice, k: Key) => median(res[side][choice][k]);
const pct = (c: Check) => `${c.valid} of ${c.calls} (${c.calls ? ((100 * c.valid) / c.calls).toFixed(1) : "–"} %)`;
const rows: string[][] = [];
for (const choice of choices) {
  const row = (label: string, k: Key, digits = 0, ratio = true) =>
    rows.push([`tool_choice ${choice}: ${label}`, m("ours", choice, k).toFixed(digits), m("theirs", choice, k).toFixed(digits), ratio ? fmtRatio(m("theirs", choice, k) / m("ours", choice, k)) : ""]);
  row("round trip, concurrency 1, ms", "c1");
  row("round trip, concurrency 8, ms", "c8");
  row("… of which the call request, concurrency 8, ms", "c8call");
  row("… of which the answer request, concurrency 8, ms", "c8answer");
  row("tokens generated per round trip", "tokens", 0, false);
  rows.push([`tool_choice ${choice}: prompt tokens per round trip (of them cached)`, ...(["ours", "theirs"] as const).map((side) => `${m(side, choice, "prompt").toFixed(0)} (${m(side, choice, "cached").toFixed(0)})`), ""]);
  rows.push([`tool_choice ${choice}: calls whose arguments validate`, pct(checks.ours[choice]), pct(checks.theirs[choice]), ""]);
}
const detail = (side: Side, choice: Choice) => {
  const c = checks[side][choice];
  return `${side === "ours" ? "ours" : "llama-server"}, tool_choice ${choice}: ${pct(c)} valid; ${c.noCall} replies without a call, ${c.unparseable} unparseable (${c.cut} of them cut by max_tokens), ${c.unknownTool} unknown tool, ${c.schemaInvalid} against the schema; ${c.failed} round trips failed with an HTTP error` +
    (c.examples.length ? `\n${c.examples.map((x) => `  - ${x}`).join("\n")}` : "");
};
// the target: with required every reply is a valid call; with auto every call made is valid (a reply that answers instead is auto's right, listed above)
const target = choices.reduce((a, c) => {
  const k = checks.ours[c], answered = c === "auto" ? k.noCall : 0;
  return { valid: a.valid + k.valid, calls: a.calls + k.calls - answered, failed: a.failed + k.failed };
}, { valid: 0, calls: 0, failed: 0 });
const table = [
  `Tool-calling round trip (request with 3 function tools, call, tool result, answer), ours vs upstream llama-server (--kv-unified --jinja), ${synthetic ? "the random-weight bench model" : "SmolLM2-135M-Instruct Q4_1"}, 2 threads, 8 slots, ${shape.ctx} tokens a slot, /v1/chat/completions non-streaming, temperature 0, parallel_tool_calls ${parallelCalls}, ≤ 128 tokens for the call and ≤ 64 (tool_choice none) for the answer; concurrency 1: ${c1Trips} round trip(s), concurrency 8: closed loop, 8 clients × ${c8Trips}; ${reps} alternating repetition(s), medians; latency ratios are llama-server / ours (> 1: ours is faster); ${cpuModel()}, CPUs ${(busyBefore * 100).toFixed(0)} % busy with other work before the start; ${new Date().toISOString()}`,
  "",
  "| workload | ours | llama-server | llama-server / ours |",
  "|---|---|---|---|",
  ...rows.map((r) => `| ${r.join(" | ")} |`),
  "",
  `Arguments checked with ajv against the tool's parameters (required fields, enums, integer bounds, additionalProperties false); a reply without a call counts as one invalid call, and a round trip whose call was missing or invalid went on with the question's reference call. Ours: ${target.valid} of ${target.calls} valid${choices.includes("auto") ? " (tool_choice auto: replies without a call left out)" : ""}, ${target.failed} HTTP failures (target 100 %: ${verdict(target.calls > 0 && target.valid === target.calls && target.failed === 0)}). ${rendered}`,
  "",
  ...choices.flatMap((c) => [`- ${detail("ours", c)}`, `- ${detail("theirs", c)}`]),
].join("\n");
console.log(table);
const command = `bun bench/tools.ts --reps=${reps}${trips === null ? "" : ` --trips=${trips}`}${choices.join(",") === "required,auto" ? "" : ` --choices=${choices.join(",")}`}${parallelCalls ? " --parallel-calls" : ""}${synthetic ? " --model=bench" : ""}`;
writeSection(join(import.meta.dir, synthetic ? "results-tools-bench.md" : "results-tools.md"), "tools", `Command: \`${command}\`\n\n${table}`);
process.exit(0);
