import { libraryPath, shim } from "./lib.ts";

export function nativeInfo(): { path: string; llamaVersion: string; systemInfo: string; gpuOffload: boolean } {
  const s = shim();
  return {
    path: libraryPath(),
    llamaVersion: s.llmshim_llama_version().toString(),
    systemInfo: s.llmshim_system_info().toString(),
    gpuOffload: s.llmshim_supports_gpu_offload(),
  };
}

/** llama.cpp's monotonic clock in microseconds. */
export function nowUs(): number {
  return shim().llmshim_time_us();
}
