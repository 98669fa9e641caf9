// A CUDA build (GGML_CUDA=1 ./build-native.sh: native/build/libllmshim-cuda.so), checked where one
// exists and no GPU is needed: its shim exports the CPU build's functions, and a server made to use
// it (LLM_BACKEND=cuda) on a machine without a GPU serves on its CPU backend, saying so in /health,
// with the CPU library's greedy text, and the default (LLM_BACKEND=auto) serves on the CPU saying
// why in one line. Skipped where no CUDA library was built (CI builds none).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { ensureModel } from "../src/gguf/models.ts";
import { cpuLibraryPath, cudaSibling } from "../src/native/library-path.ts";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.ts";

setDefaultTimeout(180_000);

const cpu = cpuLibraryPath();
const cuda = cudaSibling(cpu);
const gpu = spawnSync("sh", ["-c", "nvidia-smi -L"], { encoding: "utf8" }).status === 0;

/** the shim's exported functions (llmshim_*) */
const exported = (lib: string) =>
  spawnSync("nm", ["-D", "--defined-only", lib], { encoding: "utf8" }).stdout.split("\n").map((l) => l.split(" ").at(-1)!).filter((n) => n.startsWith("llmshim_")).sort();

describe.skipIf(!existsSync(cuda))("a CUDA build, without needing a GPU", () => {
  const servers: ServerProcess[] = [];
  afterAll(() => servers.forEach((s) => s.proc.kill("SIGKILL")));

  test("its shim exports exactly the CPU build's functions", () => {
    const names = exported(cuda);
    expect(names.length).toBeGreaterThan(50);
    expect(names).toEqual(exported(cpu));
  });

  test.skipIf(gpu)("a server on it without a GPU serves on the CPU: /health says no offload, and the greedy text is the CPU library's", async () => {
    const model = await ensureModel("tiny");
    const texts: string[] = [];
    for (const backend of ["cuda", "auto", "cpu"]) {
      const s = await startServerProcess({ MODEL_PATH: model, LLM_BACKEND: backend, PARALLEL: "2", CTX_SIZE: "512", SESSION_STORE: "off", FLASH_ATTN: "off" });
      servers.push(s);
      const health = (await (await fetch(`${s.url}/health`)).json()) as { model: { gpuOffload: boolean } };
      expect(health.model.gpuOffload).toBe(false);
      if (backend === "cuda") expect(s.log()).toMatch(/ggml_cuda_init/); // the CUDA library's backend looked for a device, and served without one
      // the default: without a driver the CPU library, saying why in one line; with a driver the CUDA one, as above
      if (backend === "auto") expect(s.log()).toMatch(/CUDA library not used: .*; serving on the CPU|ggml_cuda_init/);
      const r = await s.post("/api/generate-one", { request_id: `cuda-${backend}`, prompt: "Hello there", stream_response: false, generation_config: { do_sample: false, max_new_tokens: 24 } });
      expect(r.status).toBe(200);
      texts.push(await r.text());
      s.proc.kill("SIGTERM");
      await s.exited;
    }
    expect(texts[0]).toBe(texts[2]!);
    expect(texts[1]).toBe(texts[2]!);
    expect(texts[2]!.length).toBeGreaterThan(0);
  });
});
