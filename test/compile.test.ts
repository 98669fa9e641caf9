// The single binary: built by `bun run compile`, started from another directory with MODEL_PATH.
import { afterAll, expect, test, setDefaultTimeout } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureModel } from "../src/gguf/models.ts";
import { Model } from "../src/native/index.ts";
import { greedyAlone } from "./helpers/greedy.ts";
import { randomPort, waitHealthy } from "./helpers/llama-server.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

let proc: ChildProcess | undefined;
afterAll(() => proc?.kill("SIGKILL"));

test("bun run compile writes one executable that embeds the native library and serves from any directory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "compiled-"));
  const bin = join(dir, "bun-llm-server");
  const build = spawnSync("bun", ["run", "scripts/compile.ts", bin], { cwd: join(import.meta.dir, ".."), encoding: "utf8" });
  expect(build.status).toBe(0);
  const modelPath = await ensureModel("tiny");
  const cache = join(dir, "cache");
  const port = randomPort(30000);
  const env = { ...process.env, MODEL_PATH: modelPath, PORT: String(port), LLM_CACHE_DIR: cache, LLM_LIB_PATH: "" };
  proc = spawn(bin, [], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stdout!.on("data", (d) => (log += d));
  proc.stderr!.on("data", (d) => (log += d));
  const child = proc;
  await waitHealthy(`http://127.0.0.1:${port}`, { what: "the binary", exitCode: () => child.exitCode, log: () => log });
  const prompt = "Hello from a single binary";
  const r = await fetch(`http://127.0.0.1:${port}/api/generate-one`, {
    method: "POST",
    body: JSON.stringify({ request_id: "bin", prompt, stream_response: false, generation_config: { do_sample: false, max_new_tokens: 12 } }),
  });
  expect(r.status).toBe(200);
  expect(r.headers.get("x-session")).toBe("new"); // the session tiers are in the binary too
  using model = Model.load(modelPath);
  // the reference runs the attention the binary serves (FLASH_ATTN, or its startup probe's choice)
  const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { model: { attention: { flashAttn: number } } };
  expect(await r.text()).toBe(model.piecesText(greedyAlone(model, model.tokenize(prompt, true, true), 12, { flashAttn: health.model.attention.flashAttn })));
  // structured output in the binary: its grammar worker (an embedded entry), xgrammar's WASM, and the
  // native schema converter (integer bounds)
  const constrained = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: "POST",
    body: JSON.stringify({ prompt: "Numbers:", max_tokens: 60, temperature: 0, json_schema: { type: "array", items: { type: "integer", minimum: 1, maximum: 5 }, minItems: 2, maxItems: 2 } }),
  });
  expect(constrained.status).toBe(200);
  const choice = ((await constrained.json()) as { choices: { text: string; finish_reason: string }[] }).choices[0]!;
  if (choice.finish_reason === "stop") for (const v of JSON.parse(choice.text) as number[]) expect(v >= 1 && v <= 5).toBe(true);
  else expect(choice.text.trimStart().startsWith("[")).toBe(true);
  // the library was copied out of the binary into the cache, not read from the source tree
  expect(readdirSync(join(cache, "lib")).some((f) => f.startsWith("libllmshim-"))).toBe(true);
});
