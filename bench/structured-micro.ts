/**
 * Grammar-constrained decoding masks (issue #19): llama.cpp's grammar engine through the shim
 * (src/native/grammar.ts) against xgrammar's WASM build (@mlc-ai/web-xgrammar), per vocabulary
 * and workload. No model weights: vocab-only loads, and random logits rows stand in for a
 * random-weight model (so the unconstrained choice almost never fits the grammar, the worst case).
 *
 * Usage: bun bench/structured-micro.ts [--steps 200] [--vocabs smollm2,llama-bpe,qwen2] [--no-xgrammar]
 *        XGRAMMAR_MODULE=/path/to/@mlc-ai/web-xgrammar/lib/index.js   while it is not a dependency of the repo
 *        (default: the package if installed, else /tmp/xg/node_modules/...)
 * Prints a markdown table and writes it to bench/results-structured.md.
 *
 * Per vocabulary x workload, one walk of --steps steps that drives both engines through the same
 * tokens. Each step takes a random row (copies untimed) and times:
 *   allows  the cheap check of the row's unconstrained argmax (with random logits almost always
 *           rejected): llama Grammar.allows(t); xgrammar acceptToken(t) (+ rollBack(1), untimed, when
 *           it was allowed; xgrammar has no non-consuming one-token check)
 *   mask    llama: Grammar.applyMask(row) (rejected logits -> -inf, in place)
 *           xgrammar: getNextTokenBitmask() + writing the bitmask into the row (JS), shown split too
 *   accept  accepting the chosen token: the argmax over the tokens both engines allow
 * A sequence restarts from the cached compiled grammar at end of generation, or when the two
 * engines allow no token in common (their JSON-Schema converters differ in whitespace).
 * Compile: cold = schema -> grammar -> ready object, no cache (llama: jsonSchemaToGbnf + fromGbnf;
 * xgrammar: a fresh compiler without cache + compile, the tokenizer info built once per vocabulary
 * and shown apart); cached = Map lookup by schema text + clone (llama) / new matcher (xgrammar).
 */
import { existsSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Model } from "../src/native/model.ts";
import { Grammar, jsonSchemaToGbnf } from "../src/native/grammar.ts";
import { nativeInfo } from "../src/native/info.ts";
import { loadXGrammar, vocabularyFromGguf, type XGrammar, type XgCompiled, type XgTokenizer } from "./xgrammar-candidate.ts";
import { vocabPath } from "../src/gguf/paths.ts";
import { defaultModelPath } from "../src/gguf/default-model.ts";
import { argmax } from "../src/sampling/logits.ts";
import { applyTokenMask } from "../src/sampling/token-mask.ts";
import { Rng } from "../src/sampling/rng.ts";
import { median, percentile } from "./stats.ts";

// ---- arguments ----------------------------------------------------------------------------
const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const STEPS = Number(opt("steps", "200"));
const VOCABS = opt("vocabs", "smollm2,llama-bpe,qwen2").split(",");
const WITH_XG = !args.includes("--no-xgrammar");
const COLD_REPS = Number(opt("cold-reps", "3"));
/** repeatable timings (mask, allows) are the best of REPS tries per step: the 2-core machine is shared */
const REPS = Number(opt("reps", "3"));
/** where the issue's instructions put the scratch install (bun add -d @mlc-ai/web-xgrammar@0.1.27 in /tmp/xg) */
const SCRATCH_XG = "/tmp/xg/node_modules/@mlc-ai/web-xgrammar/lib/index.js";

// ---- workloads ----------------------------------------------------------------------------
/** nested: $defs/$ref, arrays with minItems/maxItems, enum, anyOf, strings (bounded and not), integers, booleans */
const SCHEMA = JSON.stringify({
  $defs: {
    address: {
      type: "object",
      properties: {
        street: { type: "string", maxLength: 24 },
        city: { type: "string", maxLength: 16 },
        zip: { type: "string", pattern: "^[0-9]{5}$" },
      },
      required: ["street", "city"],
    },
    person: {
      type: "object",
      properties: {
        name: { type: "string", minLength: 1, maxLength: 20 },
        age: { type: "integer", minimum: 0, maximum: 150 },
        role: { enum: ["admin", "user", "guest"] },
        address: { $ref: "#/$defs/address" },
        contact: {
          anyOf: [
            { type: "string", maxLength: 24 },
            { type: "object", properties: { phone: { type: "string", maxLength: 12 } }, required: ["phone"] },
            { type: "null" },
          ],
        },
        tags: { type: "array", items: { type: "string", maxLength: 8 }, minItems: 1, maxItems: 4 },
      },
      required: ["name", "age", "role", "tags"],
    },
  },
  type: "object",
  properties: {
    people: { type: "array", items: { $ref: "#/$defs/person" }, minItems: 1, maxItems: 3 },
    total: { type: "integer" },
    complete: { type: "boolean" },
    note: { type: "string" },
  },
  required: ["people", "total", "complete"],
});

/** arithmetic expressions: recursion through parentheses, repetition, character classes */
const GBNF = `root   ::= expr
expr   ::= term (ws [-+] ws term)*
term   ::= factor (ws [*/] ws factor)*
factor ::= number | "(" ws expr ws ")" | "-" factor
number ::= [0-9]+ ("." [0-9]+)?
ws     ::= [ ]?
`;

interface Workload {
  name: string;
  kind: "schema" | "gbnf";
  text: string;
}
const WORKLOADS: Workload[] = [
  { name: "JSON schema (nested)", kind: "schema", text: SCHEMA },
  { name: "GBNF arithmetic", kind: "gbnf", text: GBNF },
];

// ---- vocabularies --------------------------------------------------------------------------
interface Vocab {
  label: string;
  path: string;
}
function resolveVocabArg(name: string): Vocab {
  if (name === "smollm2") {
    const p = defaultModelPath();
    if (existsSync(p)) return { label: "SmolLM2 49k", path: p };
    return { label: "starcoder 49k (SmolLM2 GGUF absent)", path: vocabPath("starcoder") };
  }
  const p = vocabPath(name);
  return { label: name, path: p };
}

// ---- helpers ----------------------------------------------------------------------------------
const ns = () => Bun.nanoseconds();
const us = (t0: number, t1: number) => (t1 - t0) / 1000;

function randomRows(n: number, nVocab: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const row = new Float32Array(nVocab);
    for (let i = 0; i < nVocab; i++) row[i] = rng.next() * 8 - 4;
    return row;
  });
}

interface Compile {
  coldMs: number[];
  coldSplit?: string;
  cachedUs: number[];
}

interface Series {
  mask: number[];
  maskSplit?: { bitmask: number[]; apply: number[] };
  allowsRaw: number[];
  allowsChosen: number[];
  accept: number[];
  allowed: number[];
  rawHits: number;
}
/** best of REPS timings of fn (µs), `setup` untimed before each */
function bestOf(fn: () => void): number;
function bestOf(setup: () => void, fn: () => void): number;
function bestOf(a: () => void, b?: () => void): number {
  const setup = b ? a : null;
  const fn = b ?? a;
  let best = Infinity;
  for (let r = 0; r < REPS; r++) {
    setup?.();
    const t0 = ns();
    fn();
    best = Math.min(best, us(t0, ns()));
  }
  return best;
}

const series = (): Series => ({ mask: [], allowsRaw: [], allowsChosen: [], accept: [], allowed: [], rawHits: 0 });

// ---- candidate (a): llama.cpp grammar through the shim -----------------------------------
function llamaCompile(model: Model, w: Workload): { compile: Compile; compiled: Grammar } {
  // cold: no cache (conversion and parsing each time; the text differs per rep so the shim's
  // one-entry conversion memo misses)
  const coldMs: number[] = [];
  const convMs: number[] = [];
  for (let r = 0; r < COLD_REPS + 1; r++) {
    const t0 = ns();
    const gbnf = w.kind === "schema" ? jsonSchemaToGbnf(w.text + " ".repeat(r + 1)) : w.text;
    const t1 = ns();
    const g = Grammar.fromGbnf(model, gbnf);
    const t2 = ns();
    g.free();
    if (r === 0) continue; // warm-up
    coldMs.push(us(t0, t2) / 1000);
    convMs.push(us(t0, t1) / 1000);
  }
  // cached: Map by schema text -> clone
  const cache = new Map<string, Grammar>();
  cache.set(w.text, w.kind === "schema" ? Grammar.fromJsonSchema(model, w.text) : Grammar.fromGbnf(model, w.text));
  const cachedUs: number[] = [];
  for (let r = 0; r < 50; r++) {
    const t0 = ns();
    const g = cache.get(w.text)!.clone();
    const t1 = ns();
    g.free();
    cachedUs.push(us(t0, t1));
  }
  return {
    compile: { coldMs, cachedUs, coldSplit: w.kind === "schema" ? `convert ${median(convMs).toFixed(2)}` : undefined },
    compiled: cache.get(w.text)!,
  };
}

// ---- candidate (b): xgrammar WASM, through bench/xgrammar-candidate.ts ------------------------
async function xgCompile(tok: XgTokenizer, w: Workload): Promise<{ compile: Compile; compiled: XgCompiled }> {
  const compileText = (text: string) => (w.kind === "schema" ? tok.compileJsonSchema(text, { anyWhitespace: false }) : tok.compileGrammar(text));
  // cold: a text not compiled before (the wrapper caches by text); the compiler object is per vocabulary
  const coldMs: number[] = [];
  for (let r = 0; r < COLD_REPS; r++) {
    const text = w.text + (w.kind === "schema" ? " " : "\n").repeat(r + 1);
    const t0 = ns();
    const m = await (await compileText(text)).matcher();
    coldMs.push(us(t0, ns()) / 1000);
    m.free();
  }
  const compiled = await compileText(w.text);
  const cachedUs: number[] = [];
  for (let r = 0; r < 50; r++) {
    const t0 = ns();
    const m = await (await compileText(w.text)).matcher(); // cache hit + a new matcher
    cachedUs.push(us(t0, ns()));
    m.free();
  }
  return { compile: { coldMs, cachedUs }, compiled };
}

// ---- the walk: both engines at the same positions ------------------------------------------
/**
 * Each step: both engines mask a copy of the same random row; the token is the argmax over the
 * tokens BOTH allow (their grammars differ slightly: the two JSON-Schema converters' whitespace),
 * so both see the same prefix at every step. Nothing allowed in common, or end of generation:
 * both start a new sequence from their cached compiled grammar.
 */
async function walk(model: Model, rows: Float32Array[], llamaCompiled: Grammar, xgCompiled: XgCompiled | null) {
  const nVocab = model.info.nVocab;
  const a = series();
  const b = xgCompiled ? { ...series(), maskSplit: { bitmask: [] as number[], apply: [] as number[] } } : null;
  const rowA = new Float32Array(nVocab);
  const rowB = new Float32Array(nVocab);
  let g = llamaCompiled.clone();
  const m = xgCompiled ? await xgCompiled.matcher() : null;
  let resets = 0;
  let disagreements = 0;
  const restart = () => {
    g.free();
    g = llamaCompiled.clone();
    m?.reset();
    resets++;
  };
  for (let step = 0; step < STEPS; step++) {
    const src = rows[step % rows.length]!;
    const raw = argmax(src);
    // the cheap check on the unconstrained choice (repeatable: it changes nothing when rejected)
    let rawA = false;
    a.allowsRaw.push(bestOf(() => { rawA = g.allows(raw); }));
    if (rawA) a.rawHits++;
    if (b && m) {
      let best = Infinity;
      let rawB = false;
      for (let r = 0; r < REPS; r++) {
        const t0 = ns();
        rawB = m.accept(raw); // xgrammar's only one-token check: consumes the token when allowed
        best = Math.min(best, us(t0, ns()));
        if (rawB) m.rollBack(1);
      }
      b.allowsRaw.push(best);
      if (rawB) b.rawHits++;
    }
    // full masks (repeatable: a mask does not change the parse state)
    let nA = 0;
    a.mask.push(bestOf(() => { rowA.set(src); }, () => { nA = g.applyMask(rowA); }));
    a.allowed.push(nA);
    let choice = rowA;
    if (b && m) {
      let best = [Infinity, Infinity, Infinity];
      let nB = 0;
      for (let r = 0; r < REPS; r++) {
        rowB.set(src);
        const t0 = ns();
        const bm = await m.nextBitmask();
        const t1 = ns();
        nB = applyTokenMask(rowB, bm); // the engine's own mask step
        const t2 = ns();
        if (us(t0, t2) < best[0]!) best = [us(t0, t2), us(t0, t1), us(t1, t2)];
      }
      b.mask.push(best[0]!);
      b.maskSplit!.bitmask.push(best[1]!);
      b.maskSplit!.apply.push(best[2]!);
      b.allowed.push(nB);
      for (let i = 0; i < nVocab; i++) if (rowB[i] === -Infinity) rowA[i] = -Infinity; // rowA := allowed by both
      choice = rowA;
    }
    const tok = argmax(choice);
    if (choice[tok] === -Infinity) { disagreements++; restart(); continue; }
    let okA = false;
    a.allowsChosen.push(bestOf(() => { okA = g.allows(tok); }));
    let t0 = ns();
    const accA = g.accept(tok);
    a.accept.push(us(t0, ns()));
    if (!okA || !accA) throw new Error(`llama: masked argmax ${tok} not accepted`);
    if (b && m) {
      t0 = ns();
      const accB = m.accept(tok);
      b.accept.push(us(t0, ns()));
      if (!accB) throw new Error(`xgrammar: masked argmax ${tok} not accepted`);
    }
    if (model.isEog(tok)) restart();
  }
  g.free();
  m?.free();
  return { a, b, resets, disagreements };
}

const LOAD_START = loadavg()[0]!;

// ---- main --------------------------------------------------------------------------------------
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const rowsOut: { candidate: string; vocab: string; workload: string; s: Series; c: Compile; walk: string }[] = [];
const notes: string[] = [];

let xg: XGrammar | null = null;
if (WITH_XG) {
  let installed = false;
  try {
    Bun.resolveSync("@mlc-ai/web-xgrammar", import.meta.dir);
    installed = true;
  } catch {} // not a dependency: try the scratch install
  if (!installed && !process.env.XGRAMMAR_MODULE && existsSync(SCRATCH_XG)) process.env.XGRAMMAR_MODULE = SCRATCH_XG;
  try {
    xg = await loadXGrammar();
    notes.push(`xgrammar imported from ${process.env.XGRAMMAR_MODULE || "@mlc-ai/web-xgrammar"}.`);
  } catch (e) {
    notes.push(`xgrammar not measured: ${(e as Error).message}`);
  }
}

for (const name of VOCABS) {
  const vocab = resolveVocabArg(name);
  const model = Model.load(vocab.path, { vocabOnly: true });
  const nVocab = model.info.nVocab;
  vocab.label = `${vocab.label} (${nVocab})`;
  console.error(`# ${vocab.label}: ${vocab.path}`);
  const rows = randomRows(16, nVocab, 19);
  let xt: XgTokenizer | null = null;
  if (xg) {
    const v = vocabularyFromGguf(vocab.path, model);
    const t0 = ns();
    xt = await xg.tokenizer(v);
    notes.push(`xgrammar tokenizer info for ${vocab.label}: ${(us(t0, ns()) / 1000).toFixed(0)} ms (vocab type ${v.vocabType}), once per model.`);
  }
  for (const w of WORKLOADS) {
    const la = llamaCompile(model, w);
    const xb = xt ? await xgCompile(xt, w) : null;
    const r = await walk(model, rows, la.compiled, xb?.compiled ?? null);
    la.compiled.free();
    const walkNote = `${r.resets} restarts (${r.disagreements} where the engines had no token in common)`;
    rowsOut.push({ candidate: "llama.cpp grammar (shim)", vocab: vocab.label, workload: w.name, s: r.a, c: la.compile, walk: walkNote });
    console.error(`  llama    ${w.name}: mask median ${f(median(r.a.mask))} µs`);
    if (r.b && xb) {
      rowsOut.push({ candidate: "xgrammar WASM 0.1.27", vocab: vocab.label, workload: w.name, s: r.b, c: xb.compile, walk: walkNote });
      console.error(`  xgrammar ${w.name}: mask median ${f(median(r.b.mask))} µs`);
    }
  }
  xt?.free(); // frees its compiled grammars too
  model.free();
}

const head = [
  "Candidate", "Vocab", "Workload", "mask µs median", "mask µs p90", "allows µs: raw argmax / chosen", "accept µs",
  "allowed tokens (median)", "raw argmax allowed", "compile cold ms", "compile cached µs", "mask ≤ 50 µs",
];
const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
for (const { candidate, vocab, workload, s: r, c } of rowsOut) {
  const maskMed = median(r.mask);
  const split = r.maskSplit ? ` (bitmask ${f(median(r.maskSplit.bitmask))} + apply ${f(median(r.maskSplit.apply))})` : "";
  const allows = `${f(median(r.allowsRaw), 2)} / ${r.allowsChosen.length ? f(median(r.allowsChosen), 2) : "–"}`;
  const cold = `${f(median(c.coldMs), 2)}${c.coldSplit ? ` (${c.coldSplit})` : ""}`;
  lines.push(`| ${[
    candidate, vocab, workload, `${f(maskMed)}${split}`, f(percentile(r.mask, 90)), allows, f(median(r.accept), 2),
    f(median(r.allowed), 0), `${r.rawHits}/${STEPS}`, cold, f(median(c.cachedUs), 1), maskMed <= 50 ? "met" : "missed",
  ].join(" | ")} |`);
}
const walks = [...new Map(rowsOut.map((r) => [`${r.vocab} / ${r.workload}`, r.walk])).entries()].map(([k, v]) => `walk ${k}: ${v}.`);
notes.push(...walks);
const table = lines.join("\n");

const info = nativeInfo();
const header = [
  "# Structured output: grammar mask micro-benchmark",
  "",
  `bun ${Bun.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), 1-min load average at start ${LOAD_START.toFixed(2)} / end ${loadavg()[0]!.toFixed(2)} (other work shares the machine), ` +
    `llama.cpp ${info.llamaVersion}`,
  `steps per walk: ${STEPS}; mask and allows: best of ${REPS} per step, then median / p90 over steps; cold compile: median of ${COLD_REPS}; cached: median of 50. Command: \`bun bench/structured-micro.ts ${args.join(" ")}\``.trim(),
  "",
];
const out = `${header.join("\n")}\n${table}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`;
console.log(out);
writeFileSync(join(import.meta.dir, "results-structured.md"), out);
