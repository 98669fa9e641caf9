// A JSON Schema's strings can only hold what JSON allows unescaped: xgrammar's converter writes a
// length-bounded or patterned string as a character class that let a raw control character (seen:
// U+0018 from a random model) or a raw quote into the answer, which then was not JSON; llama.cpp's
// converter (tools, wide integer ranges) did the same with a pattern.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import Ajv from "ajv";
import { jsonSafeStrings } from "../src/constraints/json-strings.ts";
import { GrammarPool } from "../src/constraints/pool.ts";
import { grammarOf, schemaGbnf } from "../src/engine/engine-constraints.ts";
import { vocabularyOf } from "../src/constraints/vocabulary.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { Model } from "../src/native/index.ts";
import { maskAllows } from "../src/sampling/token-mask.ts";

setDefaultTimeout(120_000);

test("string rules' classes lose the controls, the quote and the backslash; other rules are untouched", () => {
  const ebnf = [
    'string ::= "\\"" [^"\\\\\\r\\n]{0,12} "\\""',
    'string_0 ::= "\\"" "a" [\\0-\\U0010ffff] "c" "\\""',
    'string_1 ::= "\\"" [a-c\\]-] "\\""',
    'string_2 ::= "\\"" [ -~]+ "\\""',
    'root ::= "{" [ \\n\\t]{0,12} string "}"',
  ].join("\n");
  const out = jsonSafeStrings(ebnf).split("\n");
  const all = "[^\\U00000000-\\U0000001f\\U00000022\\U0000005c]";
  expect(out[0]).toBe(`string ::= "\\"" ${all}{0,12} "\\""`);
  expect(out[1]).toBe(`string_0 ::= "\\"" "a" ${all} "c" "\\""`); // a literal inside is kept
  expect(out[2]).toBe('string_1 ::= "\\"" [a-c\\]-] "\\""'); // already safe: as written
  // ASCII less " and \\, written as what it holds (xgrammar clamps a negated class's exclusions to ASCII)
  expect(out[3]).toBe('string_2 ::= "\\"" [\\U00000020-\\U00000021\\U00000023-\\U0000005b\\U0000005d-\\U0000007e]+ "\\""');
  expect(out[4]).toBe('root ::= "{" [ \\n\\t]{0,12} string "}"'); // whitespace between values keeps its newline and tab
});

describe("a random walk that takes any forbidden character it is offered still writes JSON that validates", () => {
  const SCHEMA = {
    type: "object",
    properties: {
      name: { type: "string", maxLength: 10 },
      code: { type: "string", pattern: "^a.c$" },
      word: { type: "string", pattern: "^[^x]{1,4}$" },
    },
    required: ["name", "code", "word"],
    additionalProperties: false,
  };
  const ajv = new Ajv();
  const pools: GrammarPool[] = [];
  afterAll(() => pools.forEach((p) => p.close()));

  for (const preset of ["tiny", "tiny-gpt2"] as const) {
    test(`${preset}'s vocabulary`, async () => {
      const path = await ensureModel(preset);
      const model = Model.load(path, { vocabOnly: true });
      const pool = new GrammarPool(vocabularyOf(path, model), { workers: 2, compileTimeoutMs: 60_000 });
      pools.push(pool);
      const forbidden = (t: number) => [...model.tokenPiece(t)].some((b) => b < 0x20 || b === 0x22 || b === 0x5c);
      let seed = 12345;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      let offered = 0;
      for (let walk = 0; walk < 16; walk++) {
        // a wide integer range: xgrammar's grammar with the converter's range in it; odd walks compile
        // the whole schema through llama.cpp's converter instead (as tools' arguments are)
        const schema = { ...SCHEMA, properties: { ...SCHEMA.properties, n: { type: "integer", minimum: -5, maximum: 99_999 } } };
        const json = JSON.stringify(schema);
        const c = await pool.open(walk % 2 ? { type: "grammar", gbnf: schemaGbnf(json) } : grammarOf({ type: "json_schema", schema: json }));
        const tokens: number[] = [];
        for (let step = 0; step < 300; step++) {
          const mask = c.mask();
          if (c.complete) break;
          const allowed: number[] = [];
          for (let t = 0; t < model.info.nVocab; t++) if (maskAllows(mask, t) && !model.info.eogTokens.includes(t)) allowed.push(t);
          const bad = allowed.filter(forbidden);
          offered += bad.length;
          // a quote or a whitespace byte outside a string is fine: only a text that fails to parse is wrong
          const pick = bad.length && random() < 0.5 ? bad : allowed;
          const token = pick[Math.floor(random() * pick.length)]!;
          tokens.push(token);
          c.accept(token);
        }
        c.close();
        const text = model.detokenize(tokens);
        let value: unknown;
        expect(() => (value = JSON.parse(text)), text).not.toThrow();
        expect(ajv.validate(schema, value)).toBe(true);
      }
      expect(offered).toBeGreaterThan(0); // the walk did get to choose a quote, newline or tab somewhere
      model.free();
    });
  }
});
