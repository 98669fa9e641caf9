// The engine's constrained-output requests: one Constraint per item, opened from the grammar
// workers (made on first use), with refusals as RequestErrors that name the field that asked.
import { CONVERTER_STRINGS, jsonSafeStrings } from "../constraints/json-strings.ts";
import { specKey, TAG_SCHEMA, type ConstraintSpec, type TagSchema } from "../constraints/messages.ts";
import { ConstraintError, type Constraint, type GrammarPool } from "../constraints/pool.ts";
import { gbnfError, jsonSchemaToGbnf } from "../native/index.ts";
import type { GenerationConfig } from "./messages.ts";
import { RequestError } from "./requests.ts";

export class EngineConstraints {
  #pool: GrammarPool | null = null;

  constructor(private readonly make: (() => GrammarPool) | null) {}

  /** One constraint per item (compiled in its own worker on first use of its text). */
  async open(config: GenerationConfig, n: number): Promise<Constraint[]> {
    const spec = config.constraint!;
    const refuse = (status: number, code: string, message: string): never => {
      throw new RequestError({ status, code, message, field: spec.field });
    };
    if (!this.make) refuse(501, "unsupported", "constrained output is not available on this engine");
    this.#pool ??= this.make!();
    const compiled = this.#grammarOf(spec);
    const opened = await Promise.allSettled(Array.from({ length: n }, () => this.#pool!.open(compiled)));
    const failed = opened.find((o) => o.status === "rejected");
    if (!failed) return opened.map((o) => (o as PromiseFulfilledResult<Constraint>).value);
    for (const o of opened) if (o.status === "fulfilled") o.value.close();
    const err = failed.reason as Error;
    const status = err instanceof ConstraintError ? err.status : 500;
    return refuse(status, status === 400 ? "invalid_constraint" : "constraint_failed", status === 400 ? explain(spec, err.message) : err.message);
  }

  /** grammarOf's answers by text: a tool loop sends the same tools every turn (converting them is JSON work on this thread) */
  readonly #converted = new Map<string, ConstraintSpec>();

  #grammarOf(spec: ConstraintSpec): ConstraintSpec {
    const key = `${spec.field ?? ""}\0${specKey(spec)}`;
    let out = this.#converted.get(key);
    if (!out) {
      out = grammarOf(spec);
      if (this.#converted.size >= CONVERTED_KEPT) this.#converted.delete(this.#converted.keys().next().value!);
      this.#converted.set(key, out);
    }
    return out;
  }

  close(): void {
    this.#pool?.close();
    this.#pool = null;
  }
}

/**
 * Integer bounds: xgrammar's own schema compiler let 121 through a maximum of 120, so bounds never
 * reach it. A closed range of at most ENUM_RANGE values becomes the `enum` of its values (exact, and
 * xgrammar's own compiler keeps its fast masks); any other range becomes the expression llama.cpp's
 * converter writes for it, put in xgrammar's own grammar (rangesAsRules). Only a bound neither can
 * place sends the whole schema through the converter (milliseconds, on this thread), whose grammar
 * costs ~10x more per mask in xgrammar (bench/results-structured.md).
 * (xgrammar's grammar syntax wants an explicit "" for the converter's empty alternatives.)
 */
export function grammarOf(spec: ConstraintSpec): ConstraintSpec {
  if (spec.type === "structural_tag") return { ...spec, tag: JSON.stringify(schemasAsGrammars(JSON.parse(spec.tag), spec.field)) };
  if (spec.type !== "json_schema" || !BOUND.test(spec.schema)) return spec;
  const placed = placeRanges(JSON.parse(spec.schema));
  if (placed) return { ...spec, schema: placed.schema, ...(placed.rules.length ? { rules: placed.rules } : {}) };
  return { type: "grammar", gbnf: schemaGbnf(spec.schema, spec.field), field: spec.field };
}

/** The schema with every integer range placed (an enum, or a placeholder and its rule), or null when a bound is left that only the converter can write. */
function placeRanges(schema: unknown): { schema: string; rules: [string, string][] } | null {
  const rules: [string, string][] = [];
  const text = JSON.stringify(rangesAsRules(rangesAsEnums(schema), rules));
  return BOUND.test(text) ? null : { schema: text, rules };
}

/**
 * Each integer schema with bounds left (a range too wide for an enum) as a placeholder `const`,
 * with llama.cpp's converter's exact expression for its range in `rules`: xgrammar then compiles
 * the schema itself (its fast masks) with that expression where the placeholder's literal is. A
 * form the converter writes as more than one rule is left as it was (the whole schema then goes
 * through the converter).
 */
export function rangesAsRules(node: unknown, rules: [string, string][]): unknown {
  if (Array.isArray(node)) return node.map((n) => rangesAsRules(n, rules));
  if (node === null || typeof node !== "object") return node;
  const o = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, VALUES.has(k) ? v : rangesAsRules(v, rules)]));
  if (o.type !== "integer" || !BOUND_KEYS.some((k) => k in o)) return o;
  if (Array.isArray(o.enum) || "const" in o) {
    // listed values: the bounds only pick among them
    const range = integerRange(o);
    if (!range) return o; // draft 4's boolean exclusives: the converter's
    const rest = withoutBounds(o);
    const ok = (v: unknown) => typeof v !== "number" || (v >= range.lo && v <= range.hi);
    const { const: value, ...others } = rest;
    if ("const" in rest) return ok(value) ? rest : { ...others, enum: [] }; // none: a grammar no token starts, a 400
    return { ...rest, enum: (rest.enum as unknown[]).filter(ok) };
  }
  let gbnf: string;
  try {
    gbnf = jsonSchemaToGbnf(JSON.stringify({ type: "integer", ...Object.fromEntries(BOUND_KEYS.filter((k) => k in o).map((k) => [k, o[k]])) }));
  } catch {
    return o; // the converter's path says why
  }
  // one rule, root, besides the converter's `space` (which the root of a bare integer does not use)
  const lines = gbnf.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("space ::="));
  const root = /^root ::= (.*)$/.exec(lines[0] ?? "");
  if (lines.length !== 1 || !root || /\bspace\b/.test(root[1]!)) return o;
  const placeholder = `__integer_range_${rules.length}__`;
  rules.push([placeholder, root[1]!]);
  return { const: placeholder };
}

const BOUND_KEYS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];
const BOUND = new RegExp(`"(${BOUND_KEYS.join("|")})"\\s*:`);
const withoutBounds = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => !BOUND_KEYS.includes(k)));

/** converted constraints kept (oldest dropped first) */
const CONVERTED_KEPT = 64;

/** the widest integer range written as an enum */
const ENUM_RANGE = 1024;

/** Each integer schema with a closed range of at most ENUM_RANGE values, as the enum of its values. */
export function rangesAsEnums(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rangesAsEnums);
  if (node === null || typeof node !== "object") return node;
  const o = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, VALUES.has(k) ? v : rangesAsEnums(v)]));
  if (o.type !== "integer") return o;
  const { multipleOf, type: _, ...rest } = withoutBounds(o);
  const range = integerRange(o);
  // draft 4's boolean exclusiveMinimum/Maximum, or a non-finite bound: left to the converter
  if (!range || (multipleOf !== undefined && !(typeof multipleOf === "number" && Number.isFinite(multipleOf) && multipleOf > 0))) return o;
  const { lo, hi } = range;
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi - lo + 1 > ENUM_RANGE) return o;
  const values: number[] = [];
  for (let v = lo; v <= hi; v++) if (multipleOf === undefined || Number.isInteger(v / (multipleOf as number))) values.push(v);
  const allowed = Array.isArray(rest.enum) ? values.filter((v) => (rest.enum as unknown[]).includes(v)) : values;
  return allowed.length === 0 ? o : { ...rest, enum: allowed }; // none: the converter's path says why
}

/**
 * An integer schema's bounds as the integers [lo, hi] it allows (±Infinity where open), or null for
 * draft 4's boolean exclusiveMinimum/Maximum or a bound that is not a finite number.
 */
function integerRange(o: Record<string, unknown>): { lo: number; hi: number } | null {
  const bounds = BOUND_KEYS.map((k) => o[k]);
  if (bounds.some((b) => b !== undefined && !(typeof b === "number" && Number.isFinite(b)))) return null;
  const [minimum, maximum, exclusiveMinimum, exclusiveMaximum] = bounds as (number | undefined)[];
  return {
    lo: Math.max(Math.ceil(minimum ?? -Infinity), Math.floor(exclusiveMinimum ?? -Infinity) + 1),
    hi: Math.min(Math.floor(maximum ?? Infinity), Math.ceil(exclusiveMaximum ?? Infinity) - 1),
  };
}

/** the string formats llama.cpp's converter writes a grammar for (a schema with a bound only it can place goes through it) */
const CONVERTER_FORMATS = new Set(["date", "time", "date-time", "uuid"]);

/** the first string format in a schema that the converter would leave unenforced, with where it is */
function unconvertedFormat(node: unknown, at = "#"): { format: string; at: string } | null {
  if (node === null || typeof node !== "object") return null;
  const entries = Array.isArray(node) ? node.map((v, i) => [String(i), v] as const) : Object.entries(node);
  const o = node as Record<string, unknown>;
  if (!Array.isArray(node) && typeof o.format === "string" && !CONVERTER_FORMATS.has(o.format)) return { format: o.format, at };
  for (const [k, v] of entries) {
    if (!Array.isArray(node) && VALUES.has(k)) continue; // instances, not schemas
    const found = unconvertedFormat(v, `${at}/${k}`);
    if (found) return found;
  }
  return null;
}

const VALUES = new Set(["enum", "const", "default", "examples"]);

/** A JSON Schema as GBNF from llama.cpp's converter, its strings JSON-safe (tools' arguments, and schemas xgrammar cannot take). */
export function schemaGbnf(schema: string, field?: string): string {
  const lost = unconvertedFormat(JSON.parse(schema));
  if (lost) {
    const message = `${field ? `${field}: ` : ""}format ${JSON.stringify(lost.format)} at ${lost.at} cannot be enforced beside a bound only llama.cpp's converter can write, which knows the formats ${[...CONVERTER_FORMATS].join(", ")}`;
    throw new RequestError({ status: 400, code: "unsupported_schema", message, field });
  }
  try {
    return jsonSafeStrings(jsonSchemaToGbnf(schema), CONVERTER_STRINGS).replace(/::=\s*\|/g, '::= "" |');
  } catch (err) {
    throw new RequestError({ status: 400, code: "invalid_constraint", message: `invalid JSON Schema: ${(err as Error).message}`, field });
  }
}

/**
 * A structural tag's JSON-Schema parts (tools' arguments) as the grammar worker's TagSchema:
 * xgrammar's own grammar with exact integer ranges and compact whitespace (xgrammar's schema
 * format inside a tag allows any amount of whitespace, which a weak model fills its budget with).
 * A bound only the converter can place makes that part the converter's GBNF, likewise compact
 * (its masks cost ~1000x more on SmolLM2: bench/results-structured.md).
 */
function schemasAsGrammars(node: unknown, field: string | undefined): unknown {
  if (Array.isArray(node)) return node.map((n) => schemasAsGrammars(n, field));
  if (node === null || typeof node !== "object") return node;
  const o = node as Record<string, unknown>;
  if (o.type === "json_schema" && "json_schema" in o) {
    const placed = placeRanges(o.json_schema);
    if (placed) return { type: TAG_SCHEMA, ...placed } satisfies TagSchema;
    return { type: "grammar", grammar: compactGbnf(schemaGbnf(JSON.stringify(o.json_schema), field)) };
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, schemasAsGrammars(v, field)]));
}

/** The converter's grammar with compact whitespace: at most one space where it allows any (up to two newlines and 20 blanks). */
export const compactGbnf = (gbnf: string) => gbnf.replace(/^space ::= .*$/m, 'space ::= " "?');

/**
 * xgrammar says only "Aborted()" when it refuses a grammar or schema (its reason goes to stderr):
 * llama.cpp's GBNF parser and JSON-Schema converter, run on the same text, say what and where.
 */
function explain(spec: ConstraintSpec, message: string): string {
  if (!/Aborted/.test(message)) return message;
  try {
    if (spec.type === "grammar") return `invalid grammar: ${gbnfError(spec.gbnf) ?? "refused by the grammar compiler"}`;
    if (spec.type === "json_schema") jsonSchemaToGbnf(spec.schema);
  } catch (err) {
    return `invalid JSON Schema: ${(err as Error).message}`;
  }
  return "the grammar compiler refused this constraint";
}
