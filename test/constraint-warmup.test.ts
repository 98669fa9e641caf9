// A JSON Schema is served through llama.cpp's converter grammar at once; from its second use on,
// xgrammar compiles its own version behind it, and once that is ready new requests get it. (Every
// structured-output test over HTTP checks the answers of the first path with ajv.)
import { expect, setDefaultTimeout, test } from "bun:test";
import { EngineConstraints } from "../src/engine/engine-constraints.ts";
import { GrammarPool } from "../src/constraints/pool.ts";
import { vocabularyOf } from "../src/constraints/vocabulary.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { Model } from "../src/native/index.ts";
import type { GenerationConfig } from "../src/engine/messages.ts";

setDefaultTimeout(120_000);

// strings with a maximum length: xgrammar's own compile of this takes ~1 s, the converter's ~20 ms
const SCHEMA = { type: "object", properties: { name: { type: "string", maxLength: 60 }, note: { type: "string", maxLength: 60 } }, required: ["name", "note"], additionalProperties: false };

test("the first requests get the converter's grammar, later ones xgrammar's own", async () => {
  const path = await ensureModel("tiny");
  const model = Model.load(path);
  const pool = new GrammarPool(vocabularyOf(path, model), { workers: 4, compileTimeoutMs: 20_000 });
  const constraints = new EngineConstraints(() => pool);
  try {
    const config = { constraint: { type: "json_schema", schema: JSON.stringify(SCHEMA), field: "response_format" } } as unknown as GenerationConfig;
    const own = { type: "json_schema", schema: JSON.stringify(SCHEMA), field: "response_format" } as const;
    const first = await constraints.open(config, 2);
    expect(first.map((c) => c.spec.type)).toEqual(["grammar", "grammar"]);
    expect(pool.compiled(own)).toBe(false); // a first use compiles only the converter's grammar
    for (const c of first) c.close();
    const second = await constraints.open(config, 1);
    expect(second[0]!.spec.type).toBe("grammar");
    second[0]!.close();
    expect(await pool.prepare(own)).toBe("ready"); // the compile the second use started
    const later = await constraints.open(config, 1);
    expect(later[0]!.spec.type).toBe("json_schema");
    later[0]!.close();
  } finally {
    constraints.close();
    model.free();
  }
});
