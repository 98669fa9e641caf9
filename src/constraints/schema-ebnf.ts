// A JSON Schema constraint as the EBNF a grammar worker compiles: xgrammar's own conversion (its
// whitespace bounded to MAX_WHITESPACE in a row, so a weak model cannot spend its budget on
// spaces), each placeholder `const` replaced by its exact integer range (engine-constraints.ts),
// and the strings made JSON-safe (json-strings.ts). A structural tag's schema parts (tool calls'
// arguments) get the same grammar with compact whitespace, the way OpenAI sends arguments.
import { Testings } from "@mlc-ai/web-xgrammar";
import { jsonSafeStrings } from "./json-strings.ts";
import { TAG_SCHEMA, type TagSchema } from "./messages.ts";

/** whitespace between JSON tokens, at most this many in a row: a weak or random model otherwise fills its budget with it */
const MAX_WHITESPACE = 12;

/**
 * xgrammar's JSON numbers, their digits bounded as llama.cpp's converter bounds them (16 before the
 * point, 16 after it, 3 in the exponent): unbounded, a weak model writes digits until max_tokens
 * (SmolLM2 answered `"population_millions": 1111…` for 120 tokens) and the answer never parses.
 */
const NUMBER_RULES: [string, string][] = [
  ['basic_integer ::= ("0" | "-"? [1-9] [0-9]*)', 'basic_integer ::= ("0" | "-"? [1-9] [0-9]{0,15})'],
  ['basic_number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [+-]? [0-9]+)?', 'basic_number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [+-]? [0-9]{1,3})?'],
];

export async function schemaEbnf(spec: { schema: string; rules?: [string, string][] }): Promise<string> {
  let ebnf = await Testings._jsonSchemaToEBNF(spec.schema, true, undefined, undefined, true, MAX_WHITESPACE);
  for (const [unbounded, bounded] of NUMBER_RULES) ebnf = ebnf.replace(unbounded, bounded);
  // the placeholder's literal as xgrammar writes it: "\"__integer_range_0__\""
  for (const [placeholder, rule] of spec.rules ?? []) {
    ebnf = ebnf.replaceAll(JSON.stringify(JSON.stringify(placeholder)), `(${rule})`);
    // written some other way: the answer would hold the placeholder's text instead of the integer
    if (ebnf.includes(placeholder)) throw new Error(`an integer range could not be placed in the grammar (${placeholder})`);
  }
  return jsonSafeStrings(ebnf);
}

/** The tag with each TagSchema part as xgrammar's grammar node, its whitespace compact: one optional space. */
export async function resolveTag(node: unknown): Promise<unknown> {
  if (Array.isArray(node)) return Promise.all(node.map(resolveTag));
  if (node === null || typeof node !== "object") return node;
  const o = node as Record<string, unknown>;
  if (o.type === TAG_SCHEMA) return { type: "grammar", grammar: compactWhitespace(await schemaEbnf(o as unknown as TagSchema)) };
  return Object.fromEntries(await Promise.all(Object.entries(o).map(async ([k, v]) => [k, await resolveTag(v)])));
}

const compactWhitespace = (ebnf: string) => ebnf.replaceAll(`[ \\n\\t]{0,${MAX_WHITESPACE}}`, '" "?').replaceAll("[ \\n\\t]*", '" "?');
