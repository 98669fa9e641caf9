// `bun bench/tool-masks.ts`: xgrammar mask time per token for the generic tool-call schema (3 tools, one with
// integer bounds) on SmolLM2's vocabulary, walking a reference reply: the converter's GBNF inside a structural
// tag, the converter's GBNF alone, and xgrammar's own JSON-Schema compile. Prints one line per candidate.
import xgrammar from "@mlc-ai/web-xgrammar";
import { Model } from "../src/native/model.ts";
import { jsonSchemaToGbnf } from "../src/native/grammar.ts";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { vocabularyOf } from "../src/constraints/vocabulary.ts";
import { genericSchema } from "../src/conversation/tool-formats/generic.ts";

const path = await ensureDefaultModel();
const model = Model.load(path, { vocabOnly: true });
const v = vocabularyOf(path, model);
const tools = [
  { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, unit: { enum: ["celsius", "fahrenheit"] }, days: { type: "integer", minimum: 1, maximum: 7 } }, required: ["city", "unit"], additionalProperties: false } },
  { name: "convert", parameters: { type: "object", properties: { amount: { type: "number" }, from: { type: "string" }, to: { type: "string" } }, required: ["amount", "from", "to"], additionalProperties: false } },
  { name: "flights", parameters: { type: "object", properties: { from: { type: "string" }, to: { type: "string" }, date: { type: "string" } }, required: ["from", "to", "date"], additionalProperties: false } },
];
const conv = { messages: [], tools, toolChoice: "required" as const, parallelToolCalls: false, maxToolCalls: 1 };
const schema = genericSchema(conv as never);
const info = await xgrammar.TokenizerInfo.createTokenizerInfo(v.tokens, v.vocabType, false, v.nVocab, v.stopTokens);
const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(info, false);
const gbnf = jsonSchemaToGbnf(JSON.stringify(schema)).replace(/::=\s*\|/g, '::= "" |').replace(/^space ::= .*$/m, 'space ::= " "?');
const reply = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "days": 2}}]}';
const ids = Array.from(model.tokenize(reply, false, false));
for (const [name, make] of [
  ["converter GBNF in a structural tag", () => compiler.compileStructuralTag(JSON.stringify({ type: "structural_tag", format: { type: "grammar", grammar: gbnf } }))],
  ["converter GBNF", () => compiler.compileGrammar(gbnf, "root")],
  ["xgrammar json_schema (any ws, max 12)", () => compiler.compileJSONSchema(JSON.stringify(schema), true, undefined, undefined, true, 12)],
  ["xgrammar json_schema (compact)", () => compiler.compileJSONSchema(JSON.stringify(schema), false, undefined, [", ", ": "], true)],
] as const) {
  const t0 = performance.now();
  const compiled = await make();
  const tc = performance.now() - t0;
  const times: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const m = await xgrammar.GrammarMatcher.createGrammarMatcher(compiled);
    for (const id of ids) {
      const s = performance.now();
      await m.getNextTokenBitmask();
      times.push(performance.now() - s);
      if (!m.acceptToken(id)) { console.log(name, "rejected", JSON.stringify(model.tokenText(id))); break; }
    }
    m.dispose();
  }
  times.sort((a, b) => a - b);
  console.log(`${name}: compile ${tc.toFixed(0)} ms; mask median ${(times[times.length >> 1]! * 1000).toFixed(0)} us, p90 ${(times[Math.floor(times.length * 0.9)]! * 1000).toFixed(0)} us, max ${(times.at(-1)! * 1000).toFixed(0)} us over ${times.length}`);
}
