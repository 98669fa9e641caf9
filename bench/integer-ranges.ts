// `bun bench/integer-ranges.ts`: a JSON Schema with an open integer bound (Pydantic's Field(ge=0)) on
// SmolLM2's vocabulary, compiled the three ways the server could: xgrammar's own conversion (fast
// masks, inexact ranges), llama.cpp's converter for the whole schema (exact, slow masks), and the
// served one, xgrammar's grammar with the converter's exact range in it. Compile time and the mask
// time per token along model-like walks (mostly short ASCII pieces). Prints a table and writes it
// into its section of bench/results-structured.md.
import { join } from "node:path";
import xgrammar from "@mlc-ai/web-xgrammar";
import { vocabularyOf } from "../src/constraints/vocabulary.ts";
import { schemaEbnf } from "../src/constraints/schema-ebnf.ts";
import { compactGbnf, grammarOf, schemaGbnf } from "../src/engine/engine-constraints.ts";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { Model } from "../src/native/index.ts";
import { median } from "./stats.ts";
import { cpuModel, writeSection } from "./table.ts";

const path = await ensureDefaultModel();
const model = Model.load(path, { vocabOnly: true });
const vocab = vocabularyOf(path, model);
const info = await xgrammar.TokenizerInfo.createTokenizerInfo(vocab.tokens, vocab.vocabType, false, vocab.nVocab, vocab.stopTokens);
const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(info, false);
const schema = {
  type: "object", additionalProperties: false, required: ["name", "age", "visits", "tags"],
  properties: { name: { type: "string" }, age: { type: "integer", minimum: 0 }, visits: { type: "integer", minimum: 1, maximum: 100_000 }, tags: { type: "array", items: { type: "string" }, maxItems: 4 } },
};
const text = JSON.stringify(schema);
const served = grammarOf({ type: "json_schema", schema: text });
if (served.type !== "json_schema") throw new Error("the served path should be xgrammar's own grammar");
const ways: [string, () => Promise<unknown>][] = [
  ["xgrammar's own conversion (inexact ranges)", () => xgrammar.Testings._jsonSchemaToEBNF(text, true, undefined, undefined, true, 12)],
  ["llama.cpp's converter, whole schema", async () => schemaGbnf(text)],
  ["served: xgrammar's, the converter's ranges inside", () => schemaEbnf(served)],
  ["llama.cpp's converter, compact whitespace (tools' arguments)", async () => compactGbnf(schemaGbnf(text))],
];
const ascii = /^[A-Za-z0-9 ",:{}\[\]]+$/;
const rows: string[] = [];
for (const [label, ebnf] of ways) {
  const t0 = performance.now();
  const g = await compiler.compileGrammar((await ebnf()) as string, "root");
  const compileMs = performance.now() - t0;
  const times: number[] = [];
  for (let walk = 0; walk < 8; walk++) {
    const m = await xgrammar.GrammarMatcher.createGrammarMatcher(g);
    let seed = 11 + walk;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let step = 0; step < 120 && !m.isTerminated(); step++) {
      const t = performance.now();
      const mask = await m.getNextTokenBitmask();
      times.push((performance.now() - t) * 1000);
      const ok: number[] = [];
      for (let tok = 0; tok < vocab.nVocab; tok++) if ((mask[tok >>> 5]! >>> (tok & 31)) & 1 && !vocab.stopTokens.includes(tok)) ok.push(tok);
      if (!ok.length) break;
      const short = ok.filter((tok) => ascii.test(new TextDecoder().decode(model.tokenPiece(tok))));
      const pool = short.length && rnd() < 0.9 ? short : ok;
      m.acceptToken(pool[Math.floor(rnd() * pool.length)]!);
    }
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  rows.push(`| ${label} | ${compileMs.toFixed(0)} | ${median(times).toFixed(0)} | ${mean.toFixed(0)} | ${times.length} |`);
  console.error(rows.at(-1));
}
const table = [
  `Integer bounds on SmolLM2's vocabulary (49k), the schema {name: string, age: integer ≥ 0, visits: integer 1..100000, tags: ≤ 4 strings}; ${cpuModel()}; ${new Date().toISOString()}`,
  "",
  "| compiled as | compile ms | mask µs, median | mask µs, mean | masks |",
  "|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(table);
writeSection(join(import.meta.dir, "results-structured.md"), "integer-ranges", `Command: \`bun bench/integer-ranges.ts\`\n\n${table}`);
process.exit(0);
