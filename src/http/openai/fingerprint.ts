// OpenAI's system_fingerprint: which build answered, so a client comparing seeded outputs can tell a
// backend change from chance. "b<llama.cpp commit>[+<our patches>]-<cpu|cuda>-<package version>",
// e.g. "bde3ff815ea7d-cpu-0.1.0" (llama-server's is "b<build number>-<commit>"). Read once per
// backend from build-native.sh's build-info.json beside the library, without loading it; a library
// without one (the compiled binary's extracted copy) is named by a digest of the file instead.
import { existsSync } from "node:fs";
import pkg from "../../../package.json";
import type { ModelFacts } from "../../engine/messages.ts";
import { cpuLibraryPath, cudaSibling, llamaBuildTag } from "../../native/library-path.ts";
import { modelFingerprint } from "../../sessions/fingerprint.ts";

export type Backend = "cpu" | "cuda";

const memo = new Map<Backend, string>();

/**
 * This server's fingerprint: the same for every response of one server, different when llama.cpp's
 * commit, our patches to it, the backend or this package's version differ. `model`: the engine's
 * facts, whose gpuOffload says which library it loaded (the CUDA one offloads); absent: the CPU one.
 */
export function systemFingerprint(model?: Pick<ModelFacts, "gpuOffload"> | null): string {
  const backend: Backend = model?.gpuOffload ? "cuda" : "cpu";
  let fp = memo.get(backend);
  if (fp === undefined) memo.set(backend, (fp = fingerprintOf({ llama: llamaBuild(backend), backend, version: pkg.version })));
  return fp;
}

/** the fingerprint of a build: its llama.cpp part (commit, or "lib" + digest), backend and package version */
export function fingerprintOf(build: { llama: string; backend: Backend; version: string }): string {
  return `b${build.llama}-${build.backend}-${build.version}`;
}

/** llama.cpp's commit (+ patch tag) from the library's build-info, else a digest of the library file */
function llamaBuild(backend: Backend): string {
  const lib = backend === "cuda" ? cudaSibling(cpuLibraryPath()) : cpuLibraryPath();
  return llamaBuildTag(lib) ?? (existsSync(lib) ? `lib${modelFingerprint(lib).slice(0, 12)}` : "unknown");
}
