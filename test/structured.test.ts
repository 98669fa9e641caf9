// Structured output on the real engine: a random-weight model under a JSON Schema must still write
// JSON that validates (ajv) whenever it ends with "stop"; running out of tokens is "length".
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import Ajv from "ajv";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";
import { schemaEbnf } from "../src/constraints/schema-ebnf.ts";
import { grammarOf, rangesAsEnums, rangesAsRules } from "../src/engine/engine-constraints.ts";
import { startTestApp, uid, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(180_000);

let t: TestApp;
let server: ReturnType<typeof Bun.serve> | null = null;
beforeAll(async () => {
  t = await startTestApp({ PARALLEL: "4", CTX_SIZE: "1024" });
}, 300_000);
afterAll(async () => {
  server?.stop(true);
  await t?.close();
});

const ajv = new Ajv({ allErrors: true });
const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 20 },
    age: { type: "integer", minimum: 0, maximum: 150 },
    mood: { enum: ["happy", "sad", "ünïcödé ✓"] },
    tags: { type: "array", items: { $ref: "#/$defs/tag" }, minItems: 1, maxItems: 3 },
    pet: { anyOf: [{ type: "null" }, { type: "object", properties: { kind: { type: "string", maxLength: 8 } }, required: ["kind"], additionalProperties: false }] },
  },
  required: ["name", "age", "mood", "tags", "pet"],
  additionalProperties: false,
  $defs: { tag: { type: "string", maxLength: 6 } },
};
const validPerson = ajv.compile(PERSON);

type Choice = { message: { content: string }; finish_reason: string; index: number };
const chat = async (body: Record<string, unknown>) => {
  const r = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "Describe a person as JSON." }], max_tokens: 300, ...body });
  return { status: r.status, body: (await r.json()) as { choices: Choice[]; error?: { message: string; param: string | null } } };
};

/** every choice that stopped is valid JSON under `check`; at least one stopped */
function expectValid(choices: Choice[], check: (v: unknown) => boolean) {
  const stopped = choices.filter((c) => c.finish_reason === "stop");
  expect(stopped.length).toBeGreaterThan(0);
  for (const c of stopped) {
    const value = JSON.parse(c.message.content);
    if (!check(value)) throw new Error(`${c.message.content} does not validate: ${JSON.stringify(validPerson.errors)}`);
  }
  for (const c of choices) expect(["stop", "length"]).toContain(c.finish_reason);
}

describe("response_format on /v1/chat/completions (random-weight model)", () => {
  test("json_schema: nested objects, enum with non-ASCII text, $defs/$ref, arrays with minItems/maxItems, anyOf — n: 3 sampled choices, each valid when it stops", async () => {
    const r = await chat({ response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON, strict: true } }, n: 3, temperature: 1, seed: 7 });
    expect(r.status).toBe(200);
    expectValid(r.body.choices, (v) => validPerson(v));
  });

  test("greedy, and streamed: the streamed text is the same valid JSON", async () => {
    const rf = { type: "json_schema", json_schema: { name: "person", schema: PERSON } };
    const plain = await chat({ response_format: rf, temperature: 0 });
    expect(plain.status).toBe(200);
    const r = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "Describe a person as JSON." }], max_tokens: 300, response_format: rf, temperature: 0, stream: true });
    let text = "";
    let finish = "";
    for (const line of (await r.text()).split("\n")) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const chunk = JSON.parse(line.slice(6)) as { choices: { delta: { content?: string }; finish_reason: string | null }[] };
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(plain.body.choices[0]!.message.content);
    expect(finish).toBe(plain.body.choices[0]!.finish_reason);
    if (finish === "stop") expect(validPerson(JSON.parse(text))).toBe(true);
  });

  test("json_object: any JSON object", async () => {
    const r = await chat({ response_format: { type: "json_object" }, n: 2, temperature: 1, seed: 3 });
    expect(r.status).toBe(200);
    expectValid(r.body.choices, (v) => typeof v === "object" && v !== null && !Array.isArray(v));
  });

  test("max_tokens reached first: finish_reason length, the text cut where it was", async () => {
    const r = await chat({ response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON } }, max_tokens: 3, temperature: 0 });
    expect(r.body.choices[0]!.finish_reason).toBe("length");
    expect(r.body.choices[0]!.message.content.startsWith("{")).toBe(true);
  });

  test("response_format text is the neutral value", async () => {
    const r = await chat({ response_format: { type: "text" }, max_tokens: 4 });
    expect(r.status).toBe(200);
  });
});

describe("the seed API and llama-server's fields", () => {
  test("generation_config.grammar (GBNF) on /api/generate-one: the text is in the grammar's language", async () => {
    const gbnf = 'root ::= "(" [a-z]{1,4} ("," [a-z]{1,4}){0,2} ")"';
    const text = await t.generate(uid("gbnf"), "List:", { max_new_tokens: 40, grammar: gbnf, do_sample: true, seed: 5 });
    expect(text).toMatch(/^\([a-z]{1,4}(,[a-z]{1,4}){0,2}\)$/);
  });

  // a small closed range goes to xgrammar as an enum, a wide or half-open one through llama.cpp's converter
  for (const [lo, hi, maxItems] of [[7, 12, 8], [-3000, 4000, 3], [-3, undefined, 4]] as const) {
    test(`integer ranges hold exactly: sampled integers in [${lo}, ${hi === undefined ? "∞)" : `${hi}]`} from a random model`, async () => {
      const schema = { type: "array", items: { type: "integer", minimum: lo, ...(hi === undefined ? {} : { maximum: hi }) }, minItems: maxItems, maxItems };
      const r = await t.post("/v1/completions", { prompt: "Numbers:", max_tokens: 200, temperature: 1.5, n: 5, seed: 11, json_schema: schema });
      const body = (await r.json()) as { choices: { text: string; finish_reason: string }[] };
      const values = body.choices.filter((c) => c.finish_reason === "stop").flatMap((c) => JSON.parse(c.text) as number[]);
      expect(values.length).toBeGreaterThan(0);
      for (const v of values) expect(v >= lo && (hi === undefined || v <= hi) && Number.isInteger(v)).toBe(true);
    });
  }

  test("which integer ranges become an enum (closed, at most 1024 values, exclusive bounds and multipleOf applied), and the rest a placeholder for the converter's exact expression", () => {
    expect(rangesAsEnums({ type: "integer", minimum: 7, maximum: 12 })).toEqual({ enum: [7, 8, 9, 10, 11, 12] });
    expect(rangesAsEnums({ type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 10, multipleOf: 3, description: "d" })).toEqual({ description: "d", enum: [3, 6, 9] });
    expect(rangesAsEnums({ items: { type: "integer", minimum: 1, maximum: 3, enum: [2, 3, 4] } })).toEqual({ items: { enum: [2, 3] } });
    // a listed value that merely looks like a schema is a value: left as it is
    const literal = { const: { type: "integer", minimum: 1, maximum: 3 }, enum: [{ type: "integer", maximum: 2, minimum: 0 }] };
    expect(rangesAsEnums(literal)).toEqual(literal);
    // wider: listed values are filtered by the bounds; otherwise a placeholder for the exact expression
    expect(rangesAsRules({ type: "integer", minimum: 0, maximum: 100_000, enum: [5, 70_000, 200_000] }, [])).toEqual({ type: "integer", enum: [5, 70_000] });
    expect(rangesAsRules({ type: "integer", minimum: 10, const: 5 }, [])).toEqual({ type: "integer", enum: [] });
    const rules: [string, string][] = [];
    expect(rangesAsRules({ properties: { n: { type: "integer", minimum: 0, description: "d" } } }, rules)).toEqual({ properties: { n: { const: "__integer_range_0__" } } });
    expect(rules).toEqual([["__integer_range_0__", "([0] | [1-9] [0-9]{0,15})"]]);
    for (const kept of [{ type: "integer", minimum: 0 }, { type: "integer", minimum: 0, maximum: 1024 }, { type: "integer", minimum: 5, maximum: 4 }, { type: "integer", minimum: 0, maximum: 5, exclusiveMinimum: true }, { type: "number", minimum: 0, maximum: 1 }]) {
      expect(rangesAsEnums(kept)).toEqual(kept);
    }
  });

  test("wider ranges are exact too: every integer from -300 to 3000 is accepted exactly when it is in range (xgrammar's own let 1 through minimum 5, -1 through maximum -2)", async () => {
    const { Grammar, Testings } = await import("@mlc-ai/web-xgrammar");
    const cases: [Record<string, number>, number, number][] = [
      [{ minimum: 5 }, 5, Infinity], [{ minimum: -3 }, -3, Infinity], [{ maximum: -2 }, -Infinity, -2],
      [{ minimum: 3, maximum: 2000 }, 3, 2000], [{ exclusiveMinimum: -250, exclusiveMaximum: 2500 }, -249, 2499],
    ];
    for (const [bounds, lo, hi] of cases) {
      const spec = grammarOf({ type: "json_schema", schema: JSON.stringify({ type: "array", items: { type: "integer", ...bounds } }) });
      expect(spec.type).toBe("json_schema"); // xgrammar's own grammar, the converter's range inside
      const grammar = await Grammar.fromEBNF(await schemaEbnf(spec as Extract<typeof spec, { type: "json_schema" }>));
      for (let n = -300; n <= 3000; n++) {
        if ((await Testings.isGrammarAcceptString(grammar, `[${n}]`)) !== (n >= lo && n <= hi)) throw new Error(`${JSON.stringify(bounds)}: ${n} ${n >= lo && n <= hi ? "refused" : "accepted"}`);
      }
    }
  });

  test("numbers have at most 16 digits before the point, 16 after it and 3 in the exponent (as llama.cpp's converter): a weak model cannot write digits until max_tokens", async () => {
    const { Grammar, Testings } = await import("@mlc-ai/web-xgrammar");
    const spec = grammarOf({ type: "json_schema", schema: JSON.stringify({ type: "object", properties: { a: { type: "integer" }, b: { type: "number" }, c: {} }, required: ["a", "b", "c"], additionalProperties: false }) });
    const grammar = await Grammar.fromEBNF(await schemaEbnf(spec as Extract<typeof spec, { type: "json_schema" }>));
    const accepts = (a: string, b: string, c = "1") => Testings.isGrammarAcceptString(grammar, `{"a": ${a}, "b": ${b}, "c": ${c}}`);
    expect(await accepts("1234567890123456", "-0.1234567890123456e-123")).toBe(true);
    expect(await accepts("-7", "2.5E3", "[1.25, {\"x\": 9999999999999999}]")).toBe(true);
    expect(await accepts("12345678901234567", "1")).toBe(false);
    expect(await accepts("1", "0.12345678901234567")).toBe(false);
    expect(await accepts("1", "1e1000")).toBe(false);
    expect(await accepts("1", "1", "[12345678901234567]")).toBe(false); // any JSON value too
  });

  test("a structural tag's schema part (a tool call's arguments): xgrammar's grammar, the exact range inside, one optional space where JSON allows whitespace", async () => {
    const { Grammar, Testings } = await import("@mlc-ai/web-xgrammar");
    const { resolveTag } = await import("../src/constraints/schema-ebnf.ts");
    const args = { type: "object", properties: { n: { type: "integer", minimum: 5 }, s: { type: "string" } }, required: ["n", "s"], additionalProperties: false };
    const tag = { type: "structural_tag", format: { type: "tag", begin: "<call>", content: { type: "json_schema", json_schema: args }, end: "</call>" } };
    const spec = grammarOf({ type: "structural_tag", tag: JSON.stringify(tag) });
    const resolved = (await resolveTag(JSON.parse((spec as { tag: string }).tag))) as { format: { content: { type: string; grammar: string } } };
    expect(resolved.format.content.type).toBe("grammar");
    const grammar = await Grammar.fromEBNF(resolved.format.content.grammar);
    const accepts = (text: string) => Testings.isGrammarAcceptString(grammar, text);
    expect(await accepts('{"n": 5, "s": "x"}')).toBe(true);
    expect(await accepts('{"n":70000,"s":"x"}')).toBe(true);
    expect(await accepts('{"n": 4, "s": "x"}')).toBe(false); // xgrammar's own range let 1-4 through
    expect(await accepts('{"n": 5,  "s": "x"}')).toBe(false); // two spaces: compact
    expect(await accepts('{\n"n": 5, "s": "x"}')).toBe(false);
  });

  test("generation_config.json_schema on a continued session constrains only the new tokens", async () => {
    const id = uid("json-cont");
    await t.generate(id, "Once upon a time", { max_new_tokens: 8 });
    const text = await t.generate(id, "", { max_new_tokens: 120, json_schema: { type: "array", items: { type: "integer" }, minItems: 2, maxItems: 4 } });
    const value = JSON.parse(text) as number[];
    expect(value.length).toBeGreaterThanOrEqual(2);
    expect(value.every(Number.isInteger)).toBe(true);
  });

  test("num_beams 3 under a JSON Schema: every beam follows the grammar, the winner validates", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" }, n: { enum: [1, 2, 3] } }, required: ["ok", "n"], additionalProperties: false };
    const r = await t.post("/api/generate-one", { request_id: uid("beams"), prompt: "JSON:", stream_response: false, generation_config: { num_beams: 3, max_new_tokens: 40, json_schema: schema } });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(ajv.compile(schema)(JSON.parse(text))).toBe(true);
  });

  test("/v1/completions with llama-server's json_schema field", async () => {
    const r = await t.post("/v1/completions", { prompt: "Numbers:", max_tokens: 60, json_schema: { type: "array", items: { enum: [1, 2, 3] }, maxItems: 3 }, temperature: 0 });
    const body = (await r.json()) as { choices: { text: string; finish_reason: string }[] };
    expect(r.status).toBe(200);
    if (body.choices[0]!.finish_reason === "stop") expect(JSON.parse(body.choices[0]!.text).every((x: number) => [1, 2, 3].includes(x))).toBe(true);
  });
});

test("string formats hold beside a wide integer range: sampled IPv4 addresses, UUIDs and dates from a random model", async () => {
  const schema = {
    type: "object", additionalProperties: false, required: ["ip", "id", "day", "n"],
    properties: { ip: { type: "string", format: "ipv4" }, id: { type: "string", format: "uuid" }, day: { type: "string", format: "date" }, n: { type: "integer", minimum: 0, maximum: 99_999 } },
  };
  const r = await chat({ response_format: { type: "json_schema", json_schema: { name: "f", schema } }, n: 3, temperature: 1, seed: 5, max_tokens: 200 });
  expect(r.status).toBe(200);
  const octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
  expectValid(r.body.choices, (v) => {
    const o = v as { ip: string; id: string; day: string };
    return Number.isInteger((v as { n: number }).n) && (v as { n: number }).n >= 0 && (v as { n: number }).n <= 99_999 && new RegExp(`^${octet}(\\.${octet}){3}$`).test(o.ip) && /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i.test(o.id) && /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/.test(o.day);
  });
});

describe("bad constraints are a 400 naming the field, and the server stays healthy", () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ["two constraints", { response_format: { type: "json_object" }, grammar: 'root ::= "a"' }, "grammar", /response_format and grammar cannot be combined/],
    ["an unsupported keyword", { response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { a: { not: { type: "string" } } } } } } }, "response_format.json_schema.schema", /"not" at #\/properties\/a/],
    ["an external $ref", { json_schema: { $ref: "https://example.com/s.json" } }, "json_schema", /\$ref/],
    ["a range on a non-integer", { json_schema: { type: "object", properties: { p: { type: "number", maximum: 1 } } } }, "json_schema", /"maximum" at #\/properties\/p is supported on integers only/],
    ["a string format with no grammar", { json_schema: { type: "string", format: "idn-email" } }, "json_schema", /format "idn-email" at # is not supported/],
    ["a length beside a pattern (neither compiler enforces both)", { json_schema: { type: "string", pattern: "^[a-z]+$", maxLength: 4 } }, "json_schema", /"maxLength" beside "pattern" at #/],
    ["an invalid grammar, with its position", { grammar: 'root := "a"' }, "grammar", /invalid grammar: expecting ::= at 1:\d+/],
    ["an unterminated grammar", { grammar: 'root ::= "a' }, "grammar", /invalid grammar: unexpected end of input/],
    ["an undefined rule", { grammar: "root ::= b" }, "grammar", /undefined rule 'b'/],
    ["a schema of an unknown type", { json_schema: { type: "frobnicate" } }, "json_schema", /invalid JSON Schema: [\s\S]*unrecognized type frobnicate/],
    ["a $ref cycle that never ends", { json_schema: { $defs: { a: { $ref: "#/$defs/a" } }, $ref: "#/$defs/a" } }, "json_schema", /no token|invalid constraint/],
  ];
  for (const [what, extra, field, message] of cases) {
    test(what, async () => {
      const r = await chat({ ...extra, max_tokens: 8 });
      expect(r.status).toBe(400);
      expect(r.body.error!.param).toBe(field);
      expect(r.body.error!.message).toMatch(message);
    });
  }

  test("on the seed API the error names generation_config's field", async () => {
    const r = await t.post("/api/generate-one", { request_id: uid("bad"), prompt: "x", generation_config: { grammar: "root ::= nowhere" } });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { field: string } }).error.field).toBe("generation_config.grammar");
    expect((await t.post("/api/generate-one", { request_id: uid("ok"), prompt: "x", stream_response: false, generation_config: { max_new_tokens: 2 } })).status).toBe(200);
  });
});

describe("the openai SDK as the client", () => {
  test("chat.completions.parse with zodResponseFormat returns a parsed object that matches", async () => {
    server = Bun.serve({ port: 0, fetch: (req) => t.app.handle(req) });
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: "none", maxRetries: 0 });
    const Answer = z.object({ city: z.string().max(12), population: z.number().int(), capital: z.boolean() });
    const completion = await client.chat.completions.parse({
      model: "any", messages: [{ role: "user", content: "A city as JSON." }], response_format: zodResponseFormat(Answer, "answer"), max_tokens: 200, temperature: 0,
    });
    const choice = completion.choices[0]!;
    if (choice.finish_reason === "stop") {
      expect(Answer.safeParse(choice.message.parsed).success).toBe(true);
    } else {
      expect(choice.finish_reason).toBe("length");
    }
  });
});
