// `bun run compile`: one executable with the server, the engine worker and the native library inside.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const out = process.argv[2] ?? join(root, "dist/bun-llm-server");
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run("bash", ["build-native.sh"]);
// a CUDA build (GGML_CUDA=1, or unset with a GPU here: build-native.sh's rule) embeds its library too: the
// binary copies it out beside the CPU one and tries it first (src/native/library-path.ts). Not a stale one
// from an earlier CUDA build when this build was for the CPU.
const cuda = join(root, "native/build/libllmshim-cuda.so");
const gpuHere = () => /GPU/.test(spawnSync("nvidia-smi", ["-L"], { encoding: "utf8" }).stdout ?? "");
const cudaBuild = process.env.GGML_CUDA === "1" || (!process.env.GGML_CUDA && gpuHere());
const extra = cudaBuild && existsSync(cuda) ? [cuda] : [];
run("bun", ["build", "--compile", "src/bin/compiled-main.ts", "src/engine/worker.ts", "src/constraints/grammar-worker.ts", ...extra, "--outfile", out]);
console.log(`[compile] wrote ${out}`);
