// Greedy parity: token ids from our FFI loop equal llama.cpp's own llama-server on the same model.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { ensureModel } from "../src/gguf/models.ts";
import { Model } from "../src/native/index.ts";
import { greedyAlone } from "./helpers/greedy.ts";
import { serverGreedy, startLlamaServer, type LlamaServer } from "./helpers/llama-server.ts";

setDefaultTimeout(120_000); // real engine on 2 cores; per file, as bun:test scopes it

const threads = Math.max(1, navigator.hardwareConcurrency);
const prompts = [
  "Once upon a time",
  "[INST] Generate a very long poem about 1000 cats [/INST]\n\n",
  "The quick brown fox jumps over the lazy dog. ".repeat(8),
  "Ünïcödé ✓ 🦙 — 日本語のテキスト",
  "def fibonacci(n):\n    return",
];

for (const preset of ["tiny", "tiny-gpt2"] as const) {
  describe(`greedy parity with llama-server (${preset})`, () => {
    let model: Model;
    let server: LlamaServer;
    beforeAll(async () => {
      const path = await ensureModel(preset);
      model = Model.load(path);
      server = await startLlamaServer(path, { threads, ctx: 1024, parallel: 1 });
    }, 900_000);
    afterAll(async () => {
      await server?.stop();
      model?.free();
    });

    for (const [i, prompt] of prompts.entries()) {
      test(`parity ${preset} prompt ${i}: 64 greedy tokens equal llama-server's`, async () => {
        const ids = model.tokenize(prompt, true, true);
        const ours = greedyAlone(model, ids, 64);
        const theirs = await serverGreedy(server, ids, 64);
        expect(ours.length).toBeGreaterThanOrEqual(64); // the fixture does not stop early
        expect(ours).toEqual(theirs);
      });
    }
  });
}
