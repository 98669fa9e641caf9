// Which libllmshim to open. The CPU library is LLM_LIB_PATH (the compiled binary sets it to its
// extracted copy) or native/build/libllmshim.so. A CUDA build (GGML_CUDA=1 ./build-native.sh) puts
// libllmshim-cuda.so beside it: LLM_BACKEND=auto (the default) tries that one first where the
// NVIDIA driver is there, and serves on the CPU library when it cannot load (one line says why);
// LLM_BACKEND=cpu never tries it, LLM_BACKEND=cuda insists on it.
import { dlopen, FFIType } from "bun:ffi";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { cacheRoot } from "../gguf/paths.ts";

export const projectRoot = resolve(import.meta.dir, "../..");

export type Backend = "cpu" | "cuda";

/** The CUDA build of a CPU library path: native/build/libllmshim.so -> native/build/libllmshim-cuda.so. */
export const cudaSibling = (cpuPath: string): string => cpuPath.replace(/(\.so)?$/, "-cuda.so");

/** The CPU library: LLM_LIB_PATH, else build-native.sh's output. */
export const cpuLibraryPath = (): string => (process.env.LLM_LIB_PATH ? resolve(process.env.LLM_LIB_PATH) : join(projectRoot, "native/build/libllmshim.so"));

/**
 * llama.cpp's commit, with our patches' tag ("de3ff815ea7d+p5ab06234"), from the build-info
 * build-native.sh writes beside a library (a CUDA library's own first), or null where there is none
 * (the compiled binary's extracted copy).
 */
export function llamaBuildTag(libPath: string): string | null {
  const backend: Backend = /-cuda\.so$/.test(libPath) ? "cuda" : "cpu";
  for (const name of backend === "cuda" ? ["build-info-cuda.json", "build-info.json"] : ["build-info.json"]) {
    try {
      const info = JSON.parse(readFileSync(join(dirname(libPath), name), "utf8")) as { commit?: string; patches?: string; backend?: string };
      if (info.commit && (info.backend ?? backend) === backend) return `${info.commit}${info.patches ? `+${info.patches}` : ""}`;
    } catch {} // no build info here
  }
  return null;
}

function wantedBackend(): Backend | "auto" {
  const v = (process.env.LLM_BACKEND || "auto").toLowerCase();
  if (v === "auto" || v === "cpu" || v === "cuda") return v;
  throw new Error(`LLM_BACKEND must be auto, cpu or cuda (got "${process.env.LLM_BACKEND}")`);
}

/** Why the NVIDIA driver cannot be used here (libcuda.so.1 does not load), or null when it loads. */
function driverMissing(): string | null {
  try {
    dlopen("libcuda.so.1", { cuDriverGetVersion: { args: [FFIType.ptr], returns: FFIType.i32 } }).close();
    return null;
  } catch {
    return "libcuda.so.1 (the NVIDIA driver) cannot be loaded";
  }
}

/** The libraries to try, in order; `skipped` says why a CUDA library that exists is not among them. */
export function libraryCandidates(): { candidates: { path: string; backend: Backend }[]; skipped: string | null } {
  const cpu = cpuLibraryPath();
  const cuda = cudaSibling(cpu);
  const want = wantedBackend();
  if (want === "cpu") return { candidates: [{ path: cpu, backend: "cpu" }], skipped: null };
  if (want === "cuda") return { candidates: [{ path: cuda, backend: "cuda" }], skipped: null };
  if (!existsSync(cuda)) return { candidates: [{ path: cpu, backend: "cpu" }], skipped: null };
  const missing = driverMissing();
  if (missing) return { candidates: [{ path: cpu, backend: "cpu" }], skipped: missing };
  return { candidates: [{ path: cuda, backend: "cuda" }, { path: cpu, backend: "cpu" }], skipped: null };
}

/** The first library to try (the one a plain dlopen would use). */
export function resolveLibraryPath(): string {
  return libraryCandidates().candidates[0]!.path;
}

/**
 * Opens the preferred library with `open` (dlopen plus checks; it throws when the library is unusable),
 * falling back from the CUDA library to the CPU one with one line on stderr naming the reason.
 * The last candidate's error is thrown as is.
 */
export function openPreferredLibrary<L>(open: (path: string) => L): { lib: L; path: string; backend: Backend } {
  const { candidates, skipped } = libraryCandidates();
  if (skipped) console.warn(`[native] CUDA library not used: ${skipped}; serving on the CPU`);
  for (let i = 0; ; i++) {
    const { path, backend } = candidates[i]!;
    try {
      return { lib: open(path), path, backend };
    } catch (err) {
      if (i === candidates.length - 1) throw err;
      const e = err as Error & { cause?: unknown };
      const why = (e.cause instanceof Error ? e.cause.message : e.message).replace(/^Failed to open library "[^"]*": /, "");
      console.warn(`[native] CUDA library not used: ${why}; serving on the CPU`);
    }
  }
}

/**
 * dlopen cannot read Bun's embedded file system: copy the library out once, named by its content hash.
 * A CUDA library embedded beside it (`bun run compile` after a CUDA build adds native/build/libllmshim-cuda.so)
 * is copied out too, as the CPU copy's cudaSibling, so the worker finds it from LLM_LIB_PATH alone.
 */
export function extractEmbeddedLibrary(embedded: string): string {
  const bytes = readFileSync(embedded);
  const cudaName = embeddedCudaName();
  const cudaBytes = cudaName ? readFileSync(join(dirname(embedded), cudaName)) : null;
  const dir = join(cacheRoot(), "lib");
  const id = Bun.hash(bytes).toString(16) + (cudaBytes ? `-${Bun.hash(cudaBytes).toString(16)}` : "");
  const target = join(dir, `libllmshim-${id}.so`);
  const write = (path: string, data: Uint8Array) => {
    if (existsSync(path)) return;
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  };
  if (cudaBytes) write(cudaSibling(target), cudaBytes); // first: the CPU copy's presence means both are there
  write(target, bytes);
  return target;
}

/** The embedded CUDA library's name (Bun adds a hash: libllmshim-cuda-1a2b3c4d.so), or null. */
function embeddedCudaName(): string | null {
  for (const f of Bun.embeddedFiles) {
    const name = basename((f as Blob & { name?: string }).name ?? "");
    if (/^libllmshim-cuda-[^-]*\.so$/.test(name)) return name;
  }
  return null;
}
