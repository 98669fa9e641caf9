// A schema refusal in words that name the rule ("max_tokens must be an integer ≥ 1", "role must be
// one of system, user", "unknown field foo"), read off the request schemas themselves: any route's
// typebox schema, no table of fields. Pure: typebox's ValueErrors in, field and sentence out.
//
// Why not typebox's own text: its union errors say only that no variant matched ("should be one of:
// 'number', 'null'" for max_tokens: 0), so a union is explained by the variant the value was meant
// for: the one of its JSON type, among objects the one its discriminator (a const property such as
// "type") names, else the one it got furthest into; literals of one type are listed.
import type { TSchema } from "@sinclair/typebox";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { Value } from "@sinclair/typebox/value";
import { fieldFromPointer } from "./errors.ts";

/** what a refusal needs of typebox's ValueError (Elysia's `error.all` entries are ValueErrors) */
export interface SchemaError {
  type: number;
  /** JSON pointer of the refused value ("/messages/0/role") */
  path: string;
  schema: TSchema;
  value: unknown;
  message?: string;
}

export interface Refusal {
  /** "messages[0].role"; "" for the value as a whole */
  field: string;
  /** a sentence naming the field and the rule it breaks */
  message: string;
}

type Schema = Record<string, unknown> & { anyOf?: Schema[]; items?: Schema | Schema[]; properties?: Record<string, Schema> };

/**
 * The first refusal among `errors` (typebox's, for one validated value) in words. `whole` names the
 * value itself when the error is at its root ("request body", "query").
 */
export function validationRefusal(errors: readonly SchemaError[], whole = "request body"): Refusal {
  const first = errors[0];
  if (!first) return { field: "", message: `${whole} is invalid` };
  return explainError(first, "", whole);
}

function explainError(e: SchemaError, base: string, whole: string): Refusal {
  const pointer = base + (e.path ?? "");
  const field = fieldFromPointer(pointer);
  if (e.type === ValueErrorType.ObjectAdditionalProperties) return { field, message: `unknown field ${field}` };
  if (e.type === ValueErrorType.ObjectRequiredProperty) return { field, message: `${field || whole} is required` };
  const schema = e.schema as Schema | undefined;
  if (!schema || typeof schema !== "object") return { field, message: `${field || whole}: ${e.message ?? "invalid value"}` }; // not typebox's
  if (Array.isArray(schema.anyOf)) return explainUnion(schema, e.value, pointer, whole);
  return { field, message: `${field || whole} ${leafRule(e.type, schema)}` };
}

/** Typebox's first error for `value` under `schema`, explained; `pointer` is where the value sits. */
function explain(schema: Schema, value: unknown, pointer: string, whole: string): Refusal {
  const first = firstError(schema, value);
  const field = fieldFromPointer(pointer);
  if (!first) return { field, message: `${field || whole} must be ${describe(schema)}` };
  return explainError(first, pointer, whole);
}

function firstError(schema: Schema, value: unknown): SchemaError | null {
  try {
    for (const e of Value.Errors(schema as TSchema, value)) return e;
  } catch {} // a schema typebox cannot check on its own (no Kind): described instead
  return null;
}

function explainUnion(schema: Schema, value: unknown, pointer: string, whole: string): Refusal {
  const field = fieldFromPointer(pointer);
  const branches = flatten(schema);
  const fitting = branches.filter((b) => fitsType(b, value));
  if (fitting.length === 0 || fitting.every((b) => b.const !== undefined)) {
    // wrong JSON type, or a literal of the right type that is not one of those listed
    return { field, message: `${field || whole} must be ${describeBranches(branches)}` };
  }
  if (fitting.length === 1) return explain(fitting[0]!, value, pointer, whole);
  const tagged = byDiscriminator(fitting, value, pointer, whole);
  if (tagged) return tagged;
  // the variant the value got furthest into (its first error deepest), the first of equals
  let best = fitting[0]!, depth = -1;
  for (const b of fitting) {
    const e = firstError(b, value);
    const d = e ? e.path.split("/").length : -1;
    if (d > depth) (best = b), (depth = d);
  }
  return explain(best, value, pointer, whole);
}

/**
 * Object variants told apart by a property every one of them fixes to a literal (OpenAI's "type"):
 * the variant the value's tag names, or a refusal of the tag itself. Null when there is no such property.
 */
function byDiscriminator(variants: Schema[], value: unknown, pointer: string, whole: string): Refusal | null {
  if (!isObject(value)) return null;
  const keys = Object.keys(variants[0]!.properties ?? {});
  for (const key of keys) {
    const tags = variants.map((v) => v.properties?.[key]?.const);
    if (tags.some((t) => t === undefined) || new Set(tags).size !== tags.length) continue;
    const i = tags.indexOf(value[key]);
    if (i >= 0) return explain(variants[i]!, value, pointer, whole);
    const at = `${pointer}/${key}`;
    const field = fieldFromPointer(at);
    if (!(key in value)) return { field, message: `${field} is required: one of ${tags.map(literal).join(", ")}` };
    return { field, message: `${field} must be one of ${tags.map(literal).join(", ")}` };
  }
  return null;
}

/** the rule a value broke, for a schema that is no union: a size limit in its own words, else what the schema takes */
function leafRule(type: number, schema: Schema): string {
  const min = schema.minItems as number | undefined, max = schema.maxItems as number | undefined;
  if (type === ValueErrorType.ArrayMinItems && min !== undefined) return min === 1 ? "must not be empty" : `must have at least ${min} items`;
  if (type === ValueErrorType.ArrayMaxItems && max !== undefined) return `must have at most ${max} item${max === 1 ? "" : "s"}`;
  if (type === ValueErrorType.ArrayUniqueItems) return "must not repeat an item";
  if (type === ValueErrorType.ObjectMinProperties) return `must have at least ${schema.minProperties} fields`;
  if (type === ValueErrorType.ObjectMaxProperties) return `must have at most ${schema.maxProperties} fields`;
  return `must be ${describe(schema)}`;
}

/** What a schema takes, as a noun phrase: "an integer between 1 and 16", "a non-empty string", "one of a, b". */
export function describe(schema: TSchema | Schema): string {
  const s = schema as Schema;
  if (Array.isArray(s.anyOf)) return describeBranches(flatten(s));
  if (s.const !== undefined) return literal(s.const);
  if (Array.isArray(s.enum)) return `one of ${(s.enum as unknown[]).map(literal).join(", ")}`;
  const type = Array.isArray(s.type) ? undefined : s.type;
  switch (type) {
    case "integer":
    case "number":
      return describeNumber(s);
    case "string":
      return describeString(s);
    case "boolean":
      return "a boolean";
    case "null":
      return "null";
    case "array":
      return describeArray(s);
    case "object":
      return "an object";
  }
  if (Array.isArray(s.type)) return orList((s.type as string[]).map((t) => describe({ type: t })));
  return "a valid value";
}

function describeNumber(s: Schema): string {
  const integer = s.type === "integer" || s.multipleOf === 1;
  const base = integer ? "an integer" : "a number";
  const lo = s.minimum !== undefined ? { op: "≥", v: s.minimum } : s.exclusiveMinimum !== undefined ? { op: ">", v: s.exclusiveMinimum } : null;
  const hi = s.maximum !== undefined ? { op: "≤", v: s.maximum } : s.exclusiveMaximum !== undefined ? { op: "<", v: s.exclusiveMaximum } : null;
  let out = base;
  if (lo && hi && lo.op === "≥" && hi.op === "≤") out += ` between ${lo.v} and ${hi.v}`;
  else if (lo && hi) out += ` ${lo.op} ${lo.v} and ${hi.op} ${hi.v}`;
  else if (lo) out += ` ${lo.op} ${lo.v}`;
  else if (hi) out += ` ${hi.op} ${hi.v}`;
  if (typeof s.multipleOf === "number" && s.multipleOf !== 1) out += ` (a multiple of ${s.multipleOf})`;
  return out;
}

function describeString(s: Schema): string {
  const min = (s.minLength as number | undefined) ?? 0, max = s.maxLength as number | undefined;
  let out = min === 1 ? "a non-empty string" : "a string";
  if (min > 1 && max !== undefined) out += ` of ${min} to ${max} characters`;
  else if (min > 1) out += ` of at least ${min} characters`;
  else if (max !== undefined) out += ` of at most ${max} characters`;
  if (typeof s.pattern === "string") out += ` matching /${s.pattern}/`;
  if (typeof s.format === "string") out += ` in the format ${s.format}`;
  return out;
}

function describeArray(s: Schema): string {
  const min = (s.minItems as number | undefined) ?? 0, max = s.maxItems as number | undefined;
  const of = s.items && !Array.isArray(s.items) ? ` of ${plural(s.items)}` : "";
  if (min > 0 && max !== undefined) return `an array of ${min} to ${max}${of ? of.slice(3) : " items"}`;
  if (max !== undefined) return `an array of at most ${max}${of ? of.slice(3) : " items"}`;
  if (min === 1) return `a non-empty array${of}`;
  if (min > 1) return `an array of at least ${min}${of ? of.slice(3) : " items"}`;
  return `an array${of}`;
}

/** the kind of thing an array holds, in the plural */
function plural(s: Schema): string {
  if (Array.isArray(s.anyOf)) return "items";
  switch (s.type) {
    case "integer": return "integers";
    case "number": return s.multipleOf === 1 ? "integers" : "numbers";
    case "string": return "strings";
    case "boolean": return "booleans";
    case "object": return "objects";
    case "array": return "arrays";
  }
  return "items";
}

/** a union's variants: literals of one type as "one of …"; null left out beside others (it means "unset") */
function describeBranches(branches: Schema[]): string {
  const kept = branches.length > 1 ? branches.filter((b) => b.type !== "null") : branches;
  const literals = kept.filter((b) => b.const !== undefined).map((b) => b.const);
  const others = [...new Set(kept.filter((b) => b.const === undefined).map(describe))];
  const parts = literals.length > 1 ? [`one of ${literals.map(literal).join(", ")}`] : literals.map(literal);
  return orList([...parts, ...others]);
}

const orList = (parts: string[]): string => (parts.length <= 1 ? (parts[0] ?? "a valid value") : `${parts.slice(0, -1).join(", ")} or ${parts.at(-1)}`);

/** a literal as the client would type it: bare when it is a plain word */
const literal = (v: unknown): string => (typeof v === "string" && /^[\w.:/-]+$/.test(v) ? v : JSON.stringify(v));

/** nested unions (Nullable(Union(…))) as one list of variants */
function flatten(s: Schema): Schema[] {
  return (s.anyOf ?? [s]).flatMap((b) => (Array.isArray(b.anyOf) ? flatten(b) : [b]));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** whether a value has the JSON type a variant takes (its literal's type for a literal; anything for an unconstrained one) */
function fitsType(s: Schema, value: unknown): boolean {
  if (Array.isArray(s.anyOf)) return s.anyOf.some((b) => fitsType(b, value));
  if (s.const !== undefined) return jsonType(s.const) === jsonType(value);
  const types = s.type === undefined ? null : ([] as unknown[]).concat(s.type);
  if (!types) return true;
  const t = jsonType(value);
  return types.some((x) => x === t || (x === "integer" && t === "number"));
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}
