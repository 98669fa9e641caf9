// A request's constraint from whichever field asked for it — /v1's response_format (OpenAI),
// grammar and json_schema (llama-server's), the seed API's generation_config.json_schema and
// .grammar — checked before it reaches the engine: one at most, within MAX_GRAMMAR_BYTES, and no
// JSON-Schema keyword the grammar compiler would silently ignore (a 400 naming it and where it is).
import type { ConstraintSpec } from "../constraints/messages.ts";
import { HttpError } from "./errors.ts";

/** JSON-Schema keywords xgrammar does not enforce: refused rather than ignored. */
const UNSUPPORTED = new Set([
  "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies", "patternProperties", "propertyNames",
  "unevaluatedProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "uniqueItems", "multipleOf",
  "minProperties", "maxProperties", "$dynamicRef", "$recursiveRef",
]);
/** string formats xgrammar's schema compiler writes a grammar for (others would become any string) */
const SCHEMA_FORMATS = new Set(["date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uri", "uri-reference", "uri-template", "uuid", "json-pointer"]);
/** string keywords a pattern overrides, and those a format overrides: neither compiler enforces them beside one */
const WITH_PATTERN = ["minLength", "maxLength", "format"];
const WITH_FORMAT = ["minLength", "maxLength"];

/** The keyword that overrides another one in this schema, and that one (nothing: [undefined, undefined]). */
function overridden(s: Record<string, unknown>): [string | undefined, string | undefined] {
  if ("pattern" in s) return ["pattern", WITH_PATTERN.find((k) => k in s)];
  if ("format" in s) return ["format", WITH_FORMAT.find((k) => k in s)];
  return [undefined, undefined];
}
/** numeric bounds: enforced on integers only */
const BOUNDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];
/** a $ref the grammar compilers resolve: the root or a local definition */
const localRef = (ref: unknown) => typeof ref === "string" && /^#(\/(\$defs|definitions)\/[^/]+)?$/.test(ref);
/** keywords whose value is one schema, a list of them, or a name → schema map */
const ONE = ["items", "additionalProperties", "additionalItems"];
const MANY = ["anyOf", "oneOf", "allOf", "prefixItems"];
const NAMED = ["properties", "$defs", "definitions"];

/** Throws a 400 for the first unsupported keyword or non-local $ref, naming the field and the JSON pointer. */
export function checkSchema(schema: unknown, field: string, at = "#"): void {
  if (typeof schema === "boolean") return;
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    throw new HttpError(400, "invalid_schema", `${field}: the schema at ${at} must be an object or a boolean`, field);
  }
  const s = schema as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (UNSUPPORTED.has(key)) throw new HttpError(400, "unsupported_schema", `${field}: the JSON-Schema keyword "${key}" at ${at} is not supported for constrained output`, field);
  }
  for (const key of BOUNDS) {
    if (key in s && s.type !== "integer") throw new HttpError(400, "unsupported_schema", `${field}: "${key}" at ${at} is supported on integers only (type "integer")`, field);
  }
  if ("format" in s && !SCHEMA_FORMATS.has(String(s.format))) {
    throw new HttpError(400, "unsupported_schema", `${field}: format ${JSON.stringify(s.format)} at ${at} is not supported here: only ${[...SCHEMA_FORMATS].join(", ")}`, field);
  }
  const [over, beside] = overridden(s);
  if (beside) throw new HttpError(400, "unsupported_schema", `${field}: "${beside}" beside "${over}" at ${at} is not enforced: ${over === "pattern" ? "write it into the pattern" : "leave one of them out"}`, field);
  if ("$ref" in s && !localRef(s.$ref)) {
    throw new HttpError(400, "unsupported_schema", `${field}: $ref ${JSON.stringify(s.$ref)} at ${at} is not supported: only "#", "#/$defs/NAME" and "#/definitions/NAME"`, field);
  }
  for (const k of ONE) if (k in s) checkSchema(s[k], field, `${at}/${k}`);
  for (const k of MANY) {
    if (!(k in s)) continue;
    if (!Array.isArray(s[k])) throw new HttpError(400, "invalid_schema", `${field}: "${k}" at ${at} must be an array of schemas`, field);
    (s[k] as unknown[]).forEach((sub, i) => checkSchema(sub, field, `${at}/${k}/${i}`));
  }
  for (const k of NAMED) {
    if (!(k in s)) continue;
    const map = s[k];
    if (map === null || typeof map !== "object" || Array.isArray(map)) throw new HttpError(400, "invalid_schema", `${field}: "${k}" at ${at} must be an object`, field);
    for (const [name, sub] of Object.entries(map)) checkSchema(sub, field, `${at}/${k}/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`);
  }
}

export interface ConstraintFields {
  /** OpenAI's response_format */
  response_format?: unknown;
  /** llama-server's / the seed API's */
  json_schema?: unknown;
  grammar?: unknown;
}

/**
 * The one constraint the request asks for (undefined: none). `prefix` is how the fields are named
 * in errors ("" on /v1, "generation_config." on the seed API).
 */
export function constraintOf(body: ConstraintFields, maxBytes: number, prefix = ""): ConstraintSpec | undefined {
  const asked: ConstraintSpec[] = [];
  const rf = body.response_format as { type?: string; json_schema?: { schema?: unknown } } | null | undefined;
  if (rf && rf.type === "json_object") asked.push({ type: "json_object", field: `${prefix}response_format` });
  if (rf && rf.type === "json_schema") {
    const schema = rf.json_schema?.schema;
    asked.push(schema === undefined ? { type: "json_object", field: `${prefix}response_format` } : schemaSpec(schema, `${prefix}response_format.json_schema.schema`, maxBytes));
  }
  if (body.json_schema != null) asked.push(schemaSpec(body.json_schema, `${prefix}json_schema`, maxBytes));
  if (body.grammar != null) {
    const field = `${prefix}grammar`;
    if (typeof body.grammar !== "string" || body.grammar.trim() === "") throw new HttpError(400, "invalid_field", `${field} must be a non-empty GBNF grammar`, field);
    if (Buffer.byteLength(body.grammar) > maxBytes) throw new HttpError(400, "grammar_too_large", `${field} is over MAX_GRAMMAR_BYTES (${maxBytes})`, field);
    asked.push({ type: "grammar", gbnf: body.grammar, field });
  }
  if (asked.length > 1) {
    const names = asked.map((a) => a.field!.replace(/\.json_schema\.schema$/, ""));
    throw new HttpError(400, "conflicting_constraints", `${names.join(" and ")} cannot be combined: give one constraint`, names[1]);
  }
  return asked[0];
}

function schemaSpec(schema: unknown, field: string, maxBytes: number): ConstraintSpec {
  checkSchema(schema, field);
  const text = JSON.stringify(schema);
  if (Buffer.byteLength(text) > maxBytes) throw new HttpError(400, "grammar_too_large", `${field} is over MAX_GRAMMAR_BYTES (${maxBytes})`, field);
  return { type: "json_schema", schema: text, field };
}

/**
 * A non-strict tool's schema with what the grammar cannot enforce left out instead of refused (as a
 * model without constraints would also ignore it): unsupported keywords, formats xgrammar has no
 * grammar for, lengths and formats beside a pattern, a format beside a length, bounds on
 * non-integers, non-local $refs.
 * Strict tools are checked by checkSchema.
 */
export function looseSchema(schema: unknown): unknown {
  if (schema === null || typeof schema !== "object") return schema;
  if (Array.isArray(schema)) return schema.map(looseSchema);
  const out: Record<string, unknown> = {};
  const s = schema as Record<string, unknown>;
  for (const [key, value] of Object.entries(s)) {
    if (UNSUPPORTED.has(key)) continue;
    if (key === "format" && !SCHEMA_FORMATS.has(String(value))) continue;
    if (WITH_PATTERN.includes(key) && "pattern" in s) continue;
    if (key === "format" && WITH_FORMAT.some((k) => k in s)) continue; // the length holds, not the format
    if (BOUNDS.includes(key) && s.type !== "integer") continue;
    if (key === "$ref" && !localRef(value)) continue;
    if (key === "$schema" || key === "$id") continue;
    out[key] = ONE.includes(key) || MANY.includes(key) ? looseSchema(value)
      : NAMED.includes(key) && value && typeof value === "object" ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, looseSchema(v)]))
      : value;
  }
  return out;
}
